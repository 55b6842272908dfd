//! Whether the database answers, as last seen by a probe that pings it every second. While it is down,
//! requests are refused at once (503) instead of each waiting out the pool's acquire timeout, and the
//! recorder spools without trying; the first successful ping lifts both, without a restart.

use super::Store;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often the probe pings, and how long one ping may take.
const PROBE_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct DatabaseHealth {
    up: AtomicBool,
}

impl Default for DatabaseHealth {
    fn default() -> Self {
        DatabaseHealth {
            up: AtomicBool::new(true),
        }
    }
}

impl DatabaseHealth {
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Records what a ping (or a failed write) just showed.
    pub fn saw(&self, up: bool) {
        let was = self.up.swap(up, Ordering::Relaxed);
        if was != up {
            if up {
                tracing::info!("the database answers again");
            } else {
                tracing::warn!("the database does not answer; requests get 503 until it does");
            }
        }
    }

    /// Pings `store` every second until `stop` turns true.
    pub async fn watch(self: Arc<Self>, store: Arc<dyn Store>, mut stop: watch::Receiver<bool>) {
        loop {
            let ping = tokio::time::timeout(PROBE_EVERY, store.ping()).await;
            self.saw(matches!(ping, Ok(Ok(()))));
            tokio::select! {
                _ = tokio::time::sleep(PROBE_EVERY) => {}
                _ = async { let _ = stop.wait_for(|stopped| *stopped).await; } => return,
            }
        }
    }
}
