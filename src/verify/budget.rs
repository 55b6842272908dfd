//! What one evaluation request may spend: steps (nodes visited, compared or produced; regex work), wall time
//! and the text of its results. Every loop of the evaluator pays here first, so a hostile path over a large
//! record ends in `resource_limit` for the claims it reaches instead of a hang, a crash or a huge answer.

use std::time::{Duration, Instant};

/// Limits of one evaluation request (configurable per server; `Limits::default()` for the CLI and tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Steps for the whole request: one per node visited, compared or selected.
    pub steps: u64,
    /// Wall time for the whole request, from the first claim.
    pub time: Duration,
    /// Longest JSONPath text, in bytes.
    pub path_bytes: usize,
    /// Deepest nesting of filters, parentheses and function calls in a path.
    pub path_depth: usize,
    /// Longest regular expression given to `match()` or `search()`, in bytes.
    pub regex_bytes: usize,
    /// Largest compiled regular expression, in bytes.
    pub regex_compiled_bytes: usize,
    /// `actual` and `detail` are each cut to this many bytes of text.
    pub text_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            steps: 10_000_000,
            time: Duration::from_secs(2),
            path_bytes: 4096,
            path_depth: 32,
            regex_bytes: 1024,
            regex_compiled_bytes: 256 * 1024,
            text_bytes: 4096,
        }
    }
}

/// Why a budget ran out; shown in the claim's `detail`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exhausted {
    Steps(u64),
    Time(Duration),
    RegexTooLarge(usize),
}

impl std::fmt::Display for Exhausted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exhausted::Steps(steps) => write!(
                f,
                "evaluation stopped: the request used its budget of {steps} steps"
            ),
            Exhausted::Time(time) => write!(
                f,
                "evaluation stopped: the request used its time budget of {} ms",
                time.as_millis()
            ),
            Exhausted::RegexTooLarge(bytes) => write!(
                f,
                "regular expression is larger than the limit of {bytes} bytes"
            ),
        }
    }
}

/// The running account of one request.
#[derive(Debug)]
pub struct Budget {
    limits: Limits,
    steps_left: u64,
    deadline: Instant,
    /// Steps since the clock was last read: reading it every step would cost more than the work.
    since_clock: u64,
    spent: Option<Exhausted>,
}

/// How many steps pass between two readings of the clock.
const CLOCK_EVERY: u64 = 4096;

impl Budget {
    pub fn new(limits: Limits) -> Budget {
        Budget {
            limits,
            steps_left: limits.steps,
            deadline: Instant::now() + limits.time,
            since_clock: 0,
            spent: None,
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Pays `steps`, or reports (and remembers) that the request has run out.
    pub fn spend(&mut self, steps: u64) -> Result<(), Exhausted> {
        if let Some(spent) = self.spent {
            return Err(spent);
        }
        if steps > self.steps_left {
            return Err(self.exhaust(Exhausted::Steps(self.limits.steps)));
        }
        self.steps_left -= steps;
        self.since_clock += steps;
        if self.since_clock >= CLOCK_EVERY {
            self.since_clock = 0;
            if Instant::now() >= self.deadline {
                return Err(self.exhaust(Exhausted::Time(self.limits.time)));
            }
        }
        Ok(())
    }

    /// The first exhaustion, if any: once spent, a request stays spent.
    pub fn spent(&self) -> Option<Exhausted> {
        self.spent
    }

    fn exhaust(&mut self, why: Exhausted) -> Exhausted {
        self.spent = Some(why);
        why
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_run_out_and_stay_out() {
        let mut budget = Budget::new(Limits {
            steps: 10,
            ..Limits::default()
        });
        assert!(budget.spend(6).is_ok());
        assert_eq!(budget.spend(5), Err(Exhausted::Steps(10)));
        assert_eq!(budget.spend(1), Err(Exhausted::Steps(10)));
        assert_eq!(budget.spent(), Some(Exhausted::Steps(10)));
    }

    #[test]
    fn time_runs_out_at_the_next_clock_reading() {
        let mut budget = Budget::new(Limits {
            time: Duration::ZERO,
            ..Limits::default()
        });
        assert_eq!(
            budget.spend(CLOCK_EVERY),
            Err(Exhausted::Time(Duration::ZERO))
        );
    }
}
