//! Rate windows in this process's memory, for a store that one process owns (SQLite); PostgreSQL keeps them
//! in a table so that every instance counts together (docs/api.md §5.4).

use crate::auth::limits::{hour_start, RateCounts, RateHit, MINUTE};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// The minute and hour windows of every scope seen.
#[derive(Default)]
pub struct MemoryCounters {
    state: Mutex<MemoryState>,
}

#[derive(Default)]
struct MemoryState {
    /// Per scope, (second, requests) oldest first, seconds inside the last minute only.
    minutes: HashMap<String, VecDeque<(i64, u64)>>,
    /// Per scope, (hour start, requests).
    hours: HashMap<String, (i64, u64)>,
    last_sweep: i64,
}

impl MemoryCounters {
    pub fn count(&self, hit: &RateHit) -> RateCounts {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        state.sweep(hit.second);
        let mut counts = RateCounts {
            oldest_second: hit.second,
            ..RateCounts::default()
        };
        if let Some(scope) = &hit.minute {
            let window = state.minutes.entry(scope.clone()).or_default();
            while window
                .front()
                .is_some_and(|(second, _)| *second <= hit.second - MINUTE)
            {
                window.pop_front();
            }
            match window.back_mut() {
                Some((second, requests)) if *second == hit.second => *requests += 1,
                _ => window.push_back((hit.second, 1)),
            }
            counts.minute = window.iter().map(|(_, requests)| requests).sum();
            counts.oldest_second = window.front().map_or(hit.second, |(second, _)| *second);
        }
        if let Some(scope) = &hit.hour {
            let slot = state
                .hours
                .entry(scope.clone())
                .or_insert((hit.hour_start, 0));
            if slot.0 != hit.hour_start {
                *slot = (hit.hour_start, 0);
            }
            slot.1 += 1;
            counts.hour = slot.1;
        }
        counts
    }

    /// Requests counted this hour, by scope with `prefix` removed, for scopes starting with `prefix`.
    pub fn hour_counts(
        &self,
        prefix: &str,
        hour_start: i64,
    ) -> std::collections::BTreeMap<String, i64> {
        let state = self
            .state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        state
            .hours
            .iter()
            .filter(|(_, (start, _))| *start == hour_start)
            .filter_map(|(scope, (_, requests))| {
                let name = scope.strip_prefix(prefix)?;
                Some((
                    name.to_string(),
                    i64::try_from(*requests).unwrap_or(i64::MAX),
                ))
            })
            .collect()
    }

    pub fn refund(&self, scope: &str, second: i64) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some(window) = state.minutes.get_mut(scope) {
            if let Some((_, requests)) = window.iter_mut().find(|(at, _)| *at == second) {
                *requests = requests.saturating_sub(1);
            }
        }
    }
}

impl MemoryState {
    /// Once a minute, forgets scopes with nothing left in their windows.
    fn sweep(&mut self, now: i64) {
        if now - self.last_sweep < MINUTE {
            return;
        }
        self.last_sweep = now;
        self.minutes.retain(|_, window| {
            window
                .back()
                .is_some_and(|(second, _)| *second > now - MINUTE)
        });
        let current = hour_start(now);
        self.hours.retain(|_, (start, _)| *start == current);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(second: i64) -> RateHit {
        RateHit {
            minute: Some("key:a".into()),
            hour: Some("tenant:t".into()),
            second,
            hour_start: hour_start(second),
        }
    }

    #[test]
    fn the_minute_window_slides_by_the_second() {
        let counters = MemoryCounters::default();
        let start = 7_200;
        for n in 0..30 {
            assert_eq!(counters.count(&hit(start)).minute, n + 1);
        }
        for n in 0..30 {
            assert_eq!(counters.count(&hit(start + 30)).minute, 31 + n);
        }
        let later = counters.count(&hit(start + 59));
        assert_eq!((later.minute, later.oldest_second), (61, start));
        let moved_on = counters.count(&hit(start + 60));
        assert_eq!(
            (moved_on.minute, moved_on.oldest_second),
            (32, start + 30),
            "the first second's 30 left the window"
        );
        counters.refund("key:a", start + 60);
        assert_eq!(counters.count(&hit(start + 60)).minute, 32);
    }

    #[test]
    fn the_hour_window_starts_again_on_the_clock_hour() {
        let counters = MemoryCounters::default();
        for _ in 0..5 {
            counters.count(&hit(3_600 + 3_599));
        }
        assert_eq!(counters.count(&hit(3_600 + 3_599)).hour, 6);
        assert_eq!(counters.count(&hit(7_200)).hour, 1);
    }
}
