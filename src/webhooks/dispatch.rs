//! Delivering a taken delivery and recording what came of it, the same for the worker, a replay and
//! retry-all: an attempt, then the outcome written under the attempt it took.

use super::attempt::{Outcome, Sender};
use super::schedule::{AfterFailure, RetrySchedule};
use super::ssrf::Guard;
use super::store::{AttemptRecord, WebhookStore};
use super::{DeliveryStatus, TakenDelivery};
use crate::persistence::StoreError;
use crate::timestamp::Timestamp;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Attempts since start, by result (`/metrics`).
#[derive(Debug, Default)]
pub struct DeliveryTally {
    pub delivered: AtomicU64,
    pub failed: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub gone: AtomicU64,
}

pub struct Dispatcher {
    pub guard: Guard,
    sender: Sender,
    schedule: RetrySchedule,
    timeout: Duration,
    pub tally: DeliveryTally,
}

impl Dispatcher {
    pub fn new(
        guard: Guard,
        schedule: RetrySchedule,
        timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        Ok(Self {
            sender: Sender::new(guard.clone(), timeout)?,
            guard,
            schedule,
            timeout,
            tally: DeliveryTally::default(),
        })
    }

    /// Until when a delivery taken at `now` is held by its attempt.
    pub fn lease_until(&self, now: Timestamp) -> Timestamp {
        now.after(super::fresh::lease(self.timeout))
    }

    /// Attempts `taken` and records the outcome: delivered, retried later, a dead letter, or (410 Gone) a dead
    /// letter whose hook is deactivated. (The worker records many attempts at once: [`Self::attempt`].)
    pub async fn deliver(
        &self,
        store: &dyn WebhookStore,
        taken: &TakenDelivery,
    ) -> Result<Outcome, StoreError> {
        let (outcome, record) = self.attempt(store, taken).await?;
        if store.record_attempts(&[record]).await?.is_empty() {
            tracing::warn!(delivery_id = %taken.id, "attempt outlived its lease; its outcome was not recorded");
        }
        Ok(outcome)
    }

    /// Attempts `taken` and says what to record; a receiver that answered 410 Gone has its hook deactivated
    /// here.
    pub async fn attempt(
        &self,
        store: &dyn WebhookStore,
        taken: &TakenDelivery,
    ) -> Result<(Outcome, AttemptRecord), StoreError> {
        let outcome = self.sender.attempt(taken).await;
        let at = Timestamp::now();
        let record = |status, status_code, error, next_retry_at| AttemptRecord {
            delivery_id: taken.id,
            attempt: taken.attempt,
            status,
            status_code,
            error,
            next_retry_at,
            at,
        };
        let record = match &outcome {
            Outcome::Delivered { status } => {
                self.tally.delivered.fetch_add(1, Ordering::Relaxed);
                record(DeliveryStatus::Delivered, Some(*status), None, None)
            }
            Outcome::Gone { status } => {
                self.tally.gone.fetch_add(1, Ordering::Relaxed);
                store.deactivate_gone(taken.webhook_id, at).await?;
                tracing::warn!(webhook_id = %taken.webhook_id, "receiver answered 410 Gone: webhook deactivated");
                record(
                    DeliveryStatus::DeadLetter,
                    Some(*status),
                    Some(format!("HTTP {status}: receiver gone; webhook deactivated")),
                    None,
                )
            }
            Outcome::Failed {
                status,
                error,
                retry_after,
            } => {
                let (status_after, next_retry_at) =
                    match self.schedule.after_failure(taken.attempt, *retry_after) {
                        AfterFailure::RetryIn(wait) => {
                            self.tally.failed.fetch_add(1, Ordering::Relaxed);
                            (DeliveryStatus::Failed, Some(at.after(wait)))
                        }
                        AfterFailure::DeadLetter => {
                            self.tally.dead_lettered.fetch_add(1, Ordering::Relaxed);
                            (DeliveryStatus::DeadLetter, None)
                        }
                    };
                tracing::debug!(delivery_id = %taken.id, attempt = taken.attempt, %error, "webhook attempt failed");
                record(status_after, *status, Some(error.clone()), next_retry_at)
            }
        };
        Ok((outcome, record))
    }
}
