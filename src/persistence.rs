//! What every part of the program knows about persistence, whichever store it uses: the one error a store
//! returns, and whether the database answers. The stores themselves are traits of the domain modules
//! (`packets::store`, `auth::store`, …), implemented by `crate::store`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached, or did not answer in time: callers answer 503 and may retry.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// The database refused work it should do (a bug, or a broken database): callers answer 500.
    #[error("database error: {0}")]
    Database(String),
    #[error("migration failed: {0}")]
    Migration(String),
    /// A row that the database returned could not be read back (a bug or a hand-edited row).
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// The store did not answer within the caller's deadline.
    pub fn timed_out() -> Self {
        StoreError::Unavailable("the database did not answer in time".into())
    }

    /// Whether retrying later may succeed (the database was out of reach), as opposed to a failure of the
    /// work itself.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }

    pub(crate) fn corrupt(what: &str, error: impl std::fmt::Display) -> Self {
        StoreError::Corrupt(format!("{what}: {error}"))
    }
}

/// How often the probe pings, and how long one ping may take.
const PROBE_EVERY: Duration = Duration::from_secs(1);

/// Whether the database answers, as last seen by a probe that pings it every second. While it is down,
/// requests are refused at once (503) instead of each waiting out the pool's acquire timeout, and the
/// recorder spools without trying; the first successful ping lifts both, without a restart.
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

    /// Pings the database (`ping`) every second until `stop` turns true.
    pub async fn watch<F, P>(self: Arc<Self>, ping: F, mut stop: watch::Receiver<bool>)
    where
        F: Fn() -> P,
        P: std::future::Future<Output = Result<(), StoreError>>,
    {
        loop {
            let ping = tokio::time::timeout(PROBE_EVERY, ping()).await;
            self.saw(matches!(ping, Ok(Ok(()))));
            tokio::select! {
                _ = tokio::time::sleep(PROBE_EVERY) => {}
                _ = async { let _ = stop.wait_for(|stopped| *stopped).await; } => return,
            }
        }
    }
}
