//! Outcomes, reason codes and their order (docs/evaluator.md "Outcome").

use serde::{Deserialize, Serialize};

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
    /// The request's evaluation budget (steps, time, path or regex size) ran out before this claim was decided.
    ResourceLimit,
}

impl Reason {
    pub const ALL: [Reason; 15] = [
        Reason::Match,
        Reason::ValueMismatch,
        Reason::PathNotFound,
        Reason::PresenceMismatch,
        Reason::NotNumeric,
        Reason::OutOfRange,
        Reason::EvidenceMissing,
        Reason::EvidenceTampered,
        Reason::UntrustedEndpoint,
        Reason::EvidenceNotJson,
        Reason::InvalidPath,
        Reason::InvalidClaim,
        Reason::NoClaims,
        Reason::StoreUnavailable,
        Reason::ResourceLimit,
    ];

    /// The reason code as the result and the CLI show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Match => "match",
            Reason::ValueMismatch => "value_mismatch",
            Reason::PathNotFound => "path_not_found",
            Reason::PresenceMismatch => "presence_mismatch",
            Reason::NotNumeric => "not_numeric",
            Reason::OutOfRange => "out_of_range",
            Reason::EvidenceMissing => "evidence_missing",
            Reason::EvidenceTampered => "evidence_tampered",
            Reason::UntrustedEndpoint => "untrusted_endpoint",
            Reason::EvidenceNotJson => "evidence_not_json",
            Reason::InvalidPath => "invalid_path",
            Reason::InvalidClaim => "invalid_claim",
            Reason::NoClaims => "no_claims",
            Reason::StoreUnavailable => "store_unavailable",
            Reason::ResourceLimit => "resource_limit",
        }
    }

    /// The outcome a reason implies.
    pub fn outcome(self) -> Outcome {
        match self {
            Reason::Match => Outcome::Pass,
            Reason::InvalidPath
            | Reason::InvalidClaim
            | Reason::NoClaims
            | Reason::StoreUnavailable
            | Reason::ResourceLimit => Outcome::Error,
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
    fn reason_codes_read_the_same_in_json_and_text() {
        for reason in Reason::ALL {
            assert_eq!(
                serde_json::to_value(reason).ok(),
                Some(serde_json::json!(reason.as_str()))
            );
        }
    }

    #[test]
    fn infrastructure_failures_are_errors_never_caught() {
        assert_eq!(Reason::StoreUnavailable.outcome(), Outcome::Error);
        assert_eq!(Reason::ResourceLimit.outcome(), Outcome::Error);
        assert_eq!(Reason::EvidenceMissing.outcome(), Outcome::Caught);
        assert_eq!(Reason::Match.outcome(), Outcome::Pass);
    }
}
