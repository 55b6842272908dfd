//! Rules from `rules/*.toml` (docs/interceptor.md "Rules files"): trusted endpoints, reverse routes, action tags
//! and redaction. Matching is pure and works on parsed URLs, never on strings.

mod file;
mod live;
pub mod pattern;
pub mod redact;
pub mod store;
mod tenant;

pub use file::{ActionRule, InvalidRules, Route, Rules};
pub use live::LiveRules;
pub use pattern::{EndpointPattern, InvalidTemplate};
pub use redact::Redaction;
pub use tenant::{TrustList, TrustedEndpoint};
