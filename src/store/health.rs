//! The database probe: pings the store every second and tells [`DatabaseHealth`] what it saw.

use super::{DatabaseHealth, Store};
use std::sync::Arc;
use tokio::sync::watch;

/// Pings `store` every second until `stop` turns true.
pub async fn watch_health(
    health: Arc<DatabaseHealth>,
    store: Arc<dyn Store>,
    stop: watch::Receiver<bool>,
) {
    health
        .watch(
            move || {
                let store = store.clone();
                async move { store.ping().await }
            },
            stop,
        )
        .await
}
