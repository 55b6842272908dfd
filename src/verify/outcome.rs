//! Outcomes, reason codes and their order (evaluator.md "Outcome").

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Outcome {
    Pass,
    Error,
    Caught,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Error => "ERROR",
            Outcome::Caught => "CAUGHT",
        }
    }

    /// `PASS`, `CAUGHT` or `ERROR`, in any case.
    pub fn parse(text: &str) -> Option<Outcome> {
        [Outcome::Pass, Outcome::Error, Outcome::Caught]
            .into_iter()
            .find(|outcome| outcome.as_str().eq_ignore_ascii_case(text.trim()))
    }

    /// The verdict of several: any CAUGHT wins (errors never mask a caught hallucination), then any ERROR;
    /// no results at all is ERROR.
    pub fn overall(results: impl IntoIterator<Item = Outcome>) -> Outcome {
        results.into_iter().max().unwrap_or(Outcome::Error)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Match,
    ValueMismatch,
    PathNotFound,
    PresenceMismatch,
    NotNumeric,
    OutOfRange,
    EvidenceMissing,
    EvidenceTampered,
    UntrustedEndpoint,
    EvidenceNotJson,
    InvalidPath,
    InvalidClaim,
    NoClaims,
    StoreUnavailable,
}

impl Reason {
    /// The outcome a reason implies.
    pub fn outcome(self) -> Outcome {
        match self {
            Reason::Match => Outcome::Pass,
            Reason::InvalidPath
            | Reason::InvalidClaim
            | Reason::NoClaims
            | Reason::StoreUnavailable => Outcome::Error,
            _ => Outcome::Caught,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caught_beats_error_beats_pass_and_nothing_is_error() {
        use Outcome::*;
        let cases: [(&[Outcome], Outcome); 6] = [
            (&[Pass, Pass], Pass),
            (&[Pass, Error], Error),
            (&[Error, Caught], Caught),
            (&[Caught, Pass, Error], Caught),
            (&[Error], Error),
            (&[], Error),
        ];
        for (results, expected) in cases {
            assert_eq!(
                Outcome::overall(results.iter().copied()),
                expected,
                "{results:?}"
            );
        }
    }

    #[test]
    fn infrastructure_failures_are_errors_never_caught() {
        assert_eq!(Reason::StoreUnavailable.outcome(), Outcome::Error);
        assert_eq!(Reason::EvidenceMissing.outcome(), Outcome::Caught);
        assert_eq!(Reason::Match.outcome(), Outcome::Pass);
    }
}
