//! The expiry worker (docs/api.md decision 7, §3.4): packets past their TTL and checkpoints past their
//! `hitl.timeout_seconds` become `expired`, with history, live event and webhook, through the same decision as
//! a DELETE. It sleeps until the next packet falls due (so a deadline is met within moments, not at the next
//! poll), waking early when this process sets a new deadline, and looks at least every `interval` (deadlines
//! set by another instance).

use crate::packets;
use crate::store::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The shortest pause between two passes, so that a packet the pass could not expire is not retried in a
/// busy loop.
const SHORTEST_PAUSE: Duration = Duration::from_millis(100);

pub async fn run(
    store: Arc<dyn Store>,
    interval: Duration,
    ttl: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let deadline_set = store.deadline_set();
    loop {
        match packets::expire_stale(store.as_ref(), ttl).await {
            Ok(0) => {}
            Ok(expired) => tracing::info!(expired, "expired stale packets"),
            Err(error) => tracing::warn!(?error, "expiry pass failed"),
        }
        let wait = match store.next_expiry(ttl).await {
            Ok(Some(due)) => due
                .wait_from_now()
                .clamp(SHORTEST_PAUSE, interval.max(SHORTEST_PAUSE)),
            Ok(None) => interval,
            Err(error) => {
                tracing::warn!(?error, "reading the next expiry failed");
                interval
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = deadline_set.notified() => {}
            _ = stop.changed() => return,
        }
    }
}
