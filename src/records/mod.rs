//! Records: the evidence of one upstream exchange (docs/interceptor.md "What a record holds"), their canonical
//! form, and the Ed25519 seal that makes them tamper-evident.

pub mod canonical;
pub mod fresh;
pub mod har;
#[cfg(test)]
mod har_properties;
pub mod import;
pub mod import_schema;
pub mod listing;
pub mod model;
pub mod signing;
pub mod store;

pub use listing::{RecordQuery, RecordSummary};
pub use model::{Header, Provenance, Record, Seal, SealedRecord, Timings};
pub use signing::{Integrity, InvalidPublicKey, Keyring, RecordKey};
