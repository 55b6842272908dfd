//! The evaluator: decides, deterministically and without I/O, whether what an agent claims matches what an
//! upstream API returned (docs/evaluator.md). Callers resolve evidence (records, integrity and trust
//! gates) and hand it in through a closure; everything here is a pure function, safe on any input.

pub mod budget;
pub mod claim;
pub mod compare;
pub mod decimal;
pub mod evaluate;
pub mod jsonpath;
pub mod outcome;
mod shown;

pub use budget::Limits;
pub use claim::{Claim, MalformedPayload, Payload};
pub use evaluate::{
    evaluate, evaluate_within, ClaimResult, Counts, Evaluation, Evidence, EvidenceRef,
};
pub use outcome::{Outcome, Reason};

#[cfg(test)]
mod list_form_tests;
#[cfg(test)]
mod tests;
