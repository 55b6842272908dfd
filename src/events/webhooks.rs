//! The webhook delivery worker (docs/api.md decision 1): attempts the deliveries this process's writes hand it
//! for their first attempt (`webhooks::fresh`, no database round trip), takes due deliveries from the outbox
//! (retries, first attempts whose lease ran out, those of instances that died) and attempts them, many at
//! once, and records their outcomes in batches. It looks for due deliveries when the next retry falls due,
//! when deliveries are put back (retry-all), and at least every second (retries written by another instance,
//! hooks reactivated); fresh ones it takes as they come, after a short gathering pause.
//!
//! Taking, attempting and recording overlap: the taker keeps up to `concurrency` attempts in flight, each
//! attempt hands its outcome to the recorder, and the recorder writes whatever outcomes have gathered in one
//! statement. An outcome lost in a crash only means the delivery is attempted again after its lease, with the
//! same `webhook-id`.

use crate::store::Store;
use crate::timestamp::Timestamp;
use crate::webhooks::dispatch::Dispatcher;
use crate::webhooks::store::AttemptRecord;
use crate::webhooks::TakenDelivery;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Deliveries taken per round, at most.
const BATCH: usize = 64;
/// Outcomes recorded per statement, at most.
const RECORD_BATCH: usize = 128;
/// After being woken by a fresh delivery, how long to let others gather before taking.
const GATHER: Duration = Duration::from_millis(10);
/// The longest the worker goes without looking for due deliveries.
const LONGEST_SLEEP: Duration = Duration::from_secs(1);
/// After a database error, before trying again.
const BACKOFF: Duration = Duration::from_secs(1);
/// How often a batch of outcomes is written before it is given up (its deliveries are attempted again after
/// their lease).
const RECORD_TRIES: u32 = 3;

pub async fn run(
    store: Arc<dyn Store>,
    dispatcher: Arc<Dispatcher>,
    concurrency: usize,
    mut stop: watch::Receiver<bool>,
) {
    let concurrency = concurrency.max(1);
    let slots = Arc::new(Semaphore::new(concurrency));
    let (outcomes, recorded) = mpsc::channel(concurrency + RECORD_BATCH);
    let recorder = tokio::spawn(record(store.clone(), recorded));
    let (requeued, fresh) = (store.deliveries_waiting(), store.fresh_deliveries());
    // When to look for due deliveries next: at once on start.
    let mut look_at = Instant::now();
    loop {
        if *stop.borrow() {
            break;
        }
        // Take no more than there are free attempt slots for: what is taken is leased.
        let Ok(first) = slots.clone().acquire_owned().await else {
            break;
        };
        let mut held = vec![first];
        while held.len() < BATCH {
            match slots.clone().try_acquire_owned() {
                Ok(slot) => held.push(slot),
                Err(_) => break,
            }
        }
        let limit = held.len();
        // Due deliveries first (they are the older), when it is time to look.
        let mut taken = Vec::with_capacity(limit);
        if Instant::now() >= look_at {
            let now = Timestamp::now();
            match store
                .take_due(now, dispatcher.lease_until(now), limit as i64)
                .await
            {
                Ok(due) => {
                    look_at = if due.len() == limit {
                        Instant::now()
                    } else {
                        next_look(store.as_ref()).await
                    };
                    taken = due;
                }
                Err(error) => {
                    tracing::warn!(?error, "taking due webhook deliveries failed");
                    look_at = Instant::now() + BACKOFF;
                }
            }
        }
        taken.extend(fresh.take(limit - taken.len()));
        let full = taken.len() == limit;
        attempt_all(&store, &dispatcher, &outcomes, taken, held);
        if full {
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(look_at) => {}
            _ = requeued.notified() => look_at = Instant::now(),
            _ = fresh.arrived() => {
                if sleep_or_stop(GATHER, &mut stop).await {
                    break;
                }
            }
            _ = stop.changed() => break,
        }
    }
    // Let the attempts in flight finish and their outcomes be written.
    let _ = slots.acquire_many(concurrency as u32).await;
    drop(outcomes);
    let _ = recorder.await;
}

/// Starts an attempt of each of `taken`, each holding one of `held`'s slots until it ends (the slots left
/// over are freed). Attempts run to their end even when a stop arrives: each is bounded by the timeout, and
/// one cut short would only be retried after its lease.
fn attempt_all(
    store: &Arc<dyn Store>,
    dispatcher: &Arc<Dispatcher>,
    outcomes: &mpsc::Sender<AttemptRecord>,
    taken: Vec<TakenDelivery>,
    mut held: Vec<OwnedSemaphorePermit>,
) {
    for (delivery, slot) in taken.into_iter().zip(held.drain(..)) {
        let (store, dispatcher, outcomes) = (store.clone(), dispatcher.clone(), outcomes.clone());
        tokio::spawn(async move {
            match dispatcher.attempt(store.as_ref(), &delivery).await {
                Ok((_, record)) => {
                    let _ = outcomes.send(record).await;
                }
                Err(error) => {
                    tracing::warn!(?error, delivery_id = %delivery.id, "deactivating a gone webhook failed")
                }
            }
            drop(slot);
        });
    }
}

/// When to look for due deliveries again: when the next one falls due, within [`LONGEST_SLEEP`].
async fn next_look(store: &dyn Store) -> Instant {
    let wait = match store.next_due().await {
        Ok(Some(due)) => due.wait_from_now().min(LONGEST_SLEEP),
        Ok(None) => LONGEST_SLEEP,
        Err(error) => {
            tracing::warn!(?error, "reading the next webhook retry failed");
            BACKOFF
        }
    };
    Instant::now() + wait
}

/// Writes outcomes as they come, as many at once as have gathered while the previous write ran.
async fn record(store: Arc<dyn Store>, mut outcomes: mpsc::Receiver<AttemptRecord>) {
    let mut batch = Vec::with_capacity(RECORD_BATCH);
    while outcomes.recv_many(&mut batch, RECORD_BATCH).await > 0 {
        for tried in 1..=RECORD_TRIES {
            match store.record_attempts(&batch).await {
                Ok(recorded) => {
                    if recorded.len() < batch.len() {
                        tracing::warn!(
                            stale = batch.len() - recorded.len(),
                            "attempts outlived their lease; their outcomes were not recorded"
                        );
                    }
                    break;
                }
                Err(error) if tried < RECORD_TRIES => {
                    tracing::warn!(?error, "recording webhook attempts failed; trying again");
                    tokio::time::sleep(BACKOFF).await;
                }
                Err(error) => {
                    tracing::warn!(?error, attempts = batch.len(),
                        "recording webhook attempts failed; they will be attempted again after their lease");
                }
            }
        }
        batch.clear();
    }
}

/// Sleeps for `wait`; true when told to stop meanwhile.
async fn sleep_or_stop(wait: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(wait) => false,
        _ = stop.changed() => true,
    }
}
