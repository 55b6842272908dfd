//! The expiry worker (docs/api.md decision 7): every `interval`, packets past their TTL and checkpoints past
//! their `hitl.timeout_seconds` become `expired`, with history, through the same decision as a DELETE.

use crate::packets;
use crate::store::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

pub async fn run(
    store: Arc<dyn Store>,
    interval: Duration,
    ttl: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.changed() => return,
        }
        match packets::expire_stale(store.as_ref(), ttl).await {
            Ok(0) => {}
            Ok(expired) => tracing::info!(expired, "expired stale packets"),
            Err(error) => tracing::warn!(?error, "expiry pass failed"),
        }
    }
}
