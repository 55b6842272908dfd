//! Rules: which upstream endpoints are trusted as evidence (and, later, reverse routes, action tags and
//! redaction from `rules/*.toml`). Matching is pure and works on parsed URLs, never on strings.

pub mod trusted;

pub use trusted::{InvalidTemplate, TrustedEndpoint};
