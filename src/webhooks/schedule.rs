//! When a failed delivery is tried again (docs/api.md decision 1): after 1 s, 5 s, 30 s, 5 min, 1 h and 6 h by
//! default — seven attempts in all — then it is a dead letter. Operators may set another schedule
//! (`--webhook-retry-schedule`); tests use one that reaches the dead letter in a second.

use std::str::FromStr;
use std::time::Duration;

/// The longest wait a receiver's `Retry-After` can ask for; a longer one is cut to this.
const LONGEST_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        Self {
            delays: [1, 5, 30, 300, 3600, 21600]
                .map(Duration::from_secs)
                .to_vec(),
        }
    }
}

/// What follows a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterFailure {
    RetryIn(Duration),
    DeadLetter,
}

impl RetrySchedule {
    /// Attempts before a delivery is a dead letter: the first and one per delay.
    pub fn max_attempts(&self) -> i64 {
        self.delays.len() as i64 + 1
    }

    /// After attempt `attempt` (1 for the first) failed; a receiver's `Retry-After` lengthens the wait, never
    /// shortens it.
    pub fn after_failure(&self, attempt: i64, retry_after: Option<Duration>) -> AfterFailure {
        let index = usize::try_from(attempt.max(1) - 1).unwrap_or(usize::MAX);
        match self.delays.get(index) {
            Some(delay) => AfterFailure::RetryIn(
                retry_after
                    .map(|asked| asked.min(LONGEST_RETRY_AFTER))
                    .map_or(*delay, |asked| asked.max(*delay)),
            ),
            None => AfterFailure::DeadLetter,
        }
    }
}

impl FromStr for RetrySchedule {
    type Err = String;

    /// Comma-separated waits, each a number with an optional unit: `ms`, `s` (the default), `m` or `h`
    /// (`1s,5s,30s,5m,1h,6h`). An empty text means no retries.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let delays = text
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(parse_wait)
            .collect::<Result<Vec<_>, _>>()?;
        if delays.len() > 20 {
            return Err("at most 20 retries".into());
        }
        Ok(Self { delays })
    }
}

fn parse_wait(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a wait such as 500ms, 5s, 5m or 1h"))?;
    let seconds = match unit {
        "ms" => number / 1000.0,
        "" | "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => return Err(format!("'{text}': the unit must be ms, s, m or h")),
    };
    Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|wait| *wait <= Duration::from_secs(7 * 24 * 3600))
        .ok_or_else(|| format!("'{text}' must be between 0 and 7 days"))
}

/// A `Retry-After` header: whole seconds, or an HTTP date (RFC 9110 §10.2.3), as a wait from `now`.
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    (at.with_timezone(&chrono::Utc) - now).to_std().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_retries_six_times_then_gives_up() {
        let schedule = RetrySchedule::default();
        let waits: Vec<_> = (1..=7).map(|n| schedule.after_failure(n, None)).collect();
        let expected: Vec<_> = [1, 5, 30, 300, 3600, 21600]
            .map(|s| AfterFailure::RetryIn(Duration::from_secs(s)))
            .into_iter()
            .chain([AfterFailure::DeadLetter])
            .collect();
        assert_eq!(waits, expected);
        assert_eq!(schedule.max_attempts(), 7);
    }

    #[test]
    fn retry_after_lengthens_but_never_shortens_the_wait() {
        let schedule = RetrySchedule::default();
        assert_eq!(
            schedule.after_failure(1, Some(Duration::from_secs(120))),
            AfterFailure::RetryIn(Duration::from_secs(120))
        );
        assert_eq!(
            schedule.after_failure(4, Some(Duration::from_secs(1))),
            AfterFailure::RetryIn(Duration::from_secs(300))
        );
        assert_eq!(
            schedule.after_failure(1, Some(Duration::from_secs(10 * 24 * 3600))),
            AfterFailure::RetryIn(LONGEST_RETRY_AFTER)
        );
    }

    #[test]
    fn schedules_parse_with_units() {
        let schedule: RetrySchedule = "100ms, 0.5s,2,1m,1h".parse().unwrap();
        assert_eq!(
            schedule.delays,
            vec![
                Duration::from_millis(100),
                Duration::from_millis(500),
                Duration::from_secs(2),
                Duration::from_secs(60),
                Duration::from_secs(3600)
            ]
        );
        assert_eq!("".parse::<RetrySchedule>().unwrap().max_attempts(), 1);
        for bad in ["5x", "-1s", "s", "8000h", "1e400"] {
            assert!(bad.parse::<RetrySchedule>().is_err(), "{bad}");
        }
    }

    #[test]
    fn retry_after_is_seconds_or_a_date() {
        let now = chrono::DateTime::parse_from_rfc3339("2015-10-21T07:27:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            None
        );
    }
}
