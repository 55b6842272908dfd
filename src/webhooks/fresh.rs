//! First attempts handed from this process's writes to its delivery worker without a round trip through the
//! database. The fan-out writes each delivery already taken for its first attempt (the attempt counted, the row
//! leased until the attempt's timeout has passed, as a take would leave it) and hands it over here after the
//! commit. A delivery that is never attempted from here (the queue was full, the process died) falls due when
//! its lease ends and is taken from the database like any retry, so nothing acknowledged depends on this
//! queue; it only saves the take's `UPDATE` on the way.

use super::TakenDelivery;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// How long past its timeout an attempt holds its delivery before another worker may take it again.
pub const LEASE_MARGIN: Duration = Duration::from_secs(5);

/// How long a taken delivery is held by its attempt, whose timeout is `timeout`.
pub fn lease(timeout: Duration) -> Duration {
    timeout + LEASE_MARGIN
}

/// Deliveries waiting for their first attempt from this process, oldest first, with when they were handed
/// over.
#[derive(Debug, Default)]
pub struct FreshDeliveries {
    queue: Mutex<VecDeque<(Instant, TakenDelivery)>>,
    arrived: Notify,
}

impl FreshDeliveries {
    /// At most this many wait here (~15 MB of 1.5 KB bodies); more are left to their lease.
    pub const CAPACITY: usize = 10_000;

    /// Hands over deliveries written and committed; wakes the worker.
    pub fn push(&self, deliveries: Vec<TakenDelivery>) {
        if deliveries.is_empty() {
            return;
        }
        let (now, mut left) = (Instant::now(), 0);
        {
            let mut queue = self
                .queue
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            for delivery in deliveries {
                if queue.len() < Self::CAPACITY {
                    queue.push_back((now, delivery));
                } else {
                    left += 1;
                }
            }
        }
        if left > 0 {
            tracing::debug!(
                left,
                "fresh deliveries queue full: these wait for their lease"
            );
        }
        self.arrived.notify_one();
    }

    /// Up to `limit` deliveries, oldest first. One that waited here longer than [`LEASE_MARGIN`] is left
    /// out: its attempt could outlast its lease, and it is taken from the database when the lease ends.
    pub fn take(&self, limit: usize) -> Vec<TakenDelivery> {
        self.take_at(limit, Instant::now())
    }

    fn take_at(&self, limit: usize, now: Instant) -> Vec<TakenDelivery> {
        let mut queue = self
            .queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut taken = Vec::with_capacity(limit.min(queue.len()));
        while taken.len() < limit {
            let Some((handed_at, delivery)) = queue.pop_front() else {
                break;
            };
            if now.saturating_duration_since(handed_at) < LEASE_MARGIN {
                taken.push(delivery);
            }
        }
        taken
    }

    /// Resolves when deliveries were pushed since the last time it resolved.
    pub async fn arrived(&self) {
        self.arrived.notified().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhooks::signing::Secret;
    use uuid::Uuid;

    fn delivery(index: u128) -> TakenDelivery {
        TakenDelivery {
            id: Uuid::from_u128(index),
            webhook_id: Uuid::nil(),
            event_id: Uuid::nil(),
            event_type: "packet.created".into(),
            body: "{}".into(),
            attempt: 1,
            url: "https://hooks.example.com/in".into(),
            secret: Secret::new("0123456789abcdef".into()),
        }
    }

    #[test]
    fn deliveries_are_taken_oldest_first_and_the_queue_is_bounded() {
        let fresh = FreshDeliveries::default();
        fresh.push((0..3).map(delivery).collect());
        let ids = |taken: Vec<TakenDelivery>| -> Vec<u128> {
            taken.iter().map(|delivery| delivery.id.as_u128()).collect()
        };
        assert_eq!(ids(fresh.take(2)), vec![0, 1]);
        assert_eq!(ids(fresh.take(5)), vec![2]);
        assert!(fresh.take(5).is_empty());
        let many = FreshDeliveries::CAPACITY as u128 + 10;
        fresh.push((0..many).map(delivery).collect());
        let all = fresh.take(usize::MAX);
        assert_eq!(
            all.len(),
            FreshDeliveries::CAPACITY,
            "the rest wait for their lease"
        );
        assert_eq!(all[0].id.as_u128(), 0);
    }

    #[test]
    fn a_delivery_that_waited_past_the_margin_is_left_to_its_lease() {
        let fresh = FreshDeliveries::default();
        fresh.push(vec![delivery(1), delivery(2)]);
        let late = Instant::now() + LEASE_MARGIN;
        assert!(fresh.take_at(5, late).is_empty());
        assert!(fresh.take(5).is_empty(), "and it is gone from the queue");
    }

    #[tokio::test]
    async fn a_push_wakes_the_worker_even_when_it_was_not_yet_waiting() {
        let fresh = FreshDeliveries::default();
        fresh.push(vec![delivery(1)]);
        tokio::time::timeout(Duration::from_secs(5), fresh.arrived())
            .await
            .expect("the wake-up was kept");
    }
}
