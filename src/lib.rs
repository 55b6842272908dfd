//! HandoffRail: handoff packets, intercepted evidence and claim verification for multi-agent AI systems.
//!
//! `server::Server` runs the service (tests boot it on port 0); `api::router` is the HTTP application;
//! the domain lives in `packets` and `auth`; `store` persists it on SQLite or PostgreSQL.

pub mod announce;
pub mod api;
pub mod auth;
pub mod cli;
pub mod client;
pub mod config;
pub mod data_dir;
pub mod evaluations;
pub mod events;
pub mod intercept;
pub(crate) mod lax;
pub mod listener;
pub mod packets;
pub mod paging;
pub mod persistence;
pub mod records;
pub mod rules;
pub mod server;
pub mod store;
pub mod timestamp;
pub mod verify;
pub mod webhooks;

/// Installs the one rustls crypto provider (ring) for the whole process; harmless to call twice.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// An error and every cause below it on one line, `outer: inner: root`: transport errors hide the useful part
/// (connection refused, certificate unknown) in their sources.
pub fn describe_error(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
