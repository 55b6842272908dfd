//! The webhook delivery worker (docs/api.md decision 1): takes due deliveries from the outbox and attempts
//! them, many at once. It wakes when a packet change writes deliveries in this process, when the next retry
//! falls due, and at least every second (deliveries written by another instance, hooks reactivated).

use crate::store::Store;
use crate::timestamp::Timestamp;
use crate::webhooks::dispatch::Dispatcher;
use futures::stream::{self, StreamExt};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Deliveries taken per round.
const BATCH: i64 = 64;
/// The longest the worker sleeps without looking.
const LONGEST_SLEEP: Duration = Duration::from_secs(1);
/// After a database error, before trying again.
const BACKOFF: Duration = Duration::from_secs(1);

pub async fn run(
    store: Arc<dyn Store>,
    dispatcher: Arc<Dispatcher>,
    concurrency: usize,
    mut stop: watch::Receiver<bool>,
) {
    let waiting = store.deliveries_waiting();
    loop {
        if *stop.borrow() {
            return;
        }
        let now = Timestamp::now();
        let taken = match store
            .take_due(now, dispatcher.lease_until(now), BATCH)
            .await
        {
            Ok(taken) => taken,
            Err(error) => {
                tracing::warn!(?error, "taking due webhook deliveries failed");
                if sleep_or_stop(BACKOFF, &mut stop).await {
                    return;
                }
                continue;
            }
        };
        if !taken.is_empty() {
            // Attempts run to their end even when a stop arrives: each is bounded by the timeout, and
            // one cut short would only be retried after its lease.
            stream::iter(&taken)
                .for_each_concurrent(concurrency.max(1), |delivery| {
                    let (store, dispatcher) = (store.clone(), dispatcher.clone());
                    async move {
                        if let Err(error) = dispatcher.deliver(store.as_ref(), delivery).await {
                            tracing::warn!(?error, delivery_id = %delivery.id, "recording a webhook attempt failed");
                        }
                    }
                })
                .await;
            continue;
        }
        let sleep = match store.next_due().await {
            Ok(Some(due)) => due.wait_from_now().min(LONGEST_SLEEP),
            Ok(None) => LONGEST_SLEEP,
            Err(error) => {
                tracing::warn!(?error, "reading the next webhook retry failed");
                BACKOFF
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = waiting.notified() => {}
            _ = stop.changed() => return,
        }
    }
}

/// Sleeps for `wait`; true when told to stop meanwhile.
async fn sleep_or_stop(wait: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(wait) => false,
        _ = stop.changed() => true,
    }
}
