//! Once a minute, drops rate windows that have ended (docs/api.md §5.4), so the table stays as small as the
//! traffic of the last hour.

use crate::store::Store;
use crate::timestamp::Timestamp;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

pub async fn run(store: Arc<dyn Store>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            _ = stop.changed() => return,
        }
        if let Err(error) = store.prune_limits(Timestamp::now().unix_seconds()).await {
            tracing::warn!(?error, "pruning rate windows failed");
        }
    }
}
