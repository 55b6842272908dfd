//! Persistence: the implementation of every resource's store trait (keys, tenants, limits, schemas, packets,
//! history, records, trust, evaluations, stats — each trait is declared by the domain module that needs it, so
//! dependencies point from here to the domain and never back), each query written once over [`statement`]'s
//! dialect (`?` placeholders rendered per backend, parameters and rows in each backend's native types). `sqlite.rs` and
//! `postgres.rs` hold only what really differs: opening, packet writes (an IMMEDIATE transaction vs one
//! statement with CTEs), full-text search (FTS5 vs tsvector), batched record inserts and rate windows.
//!
//! Both backends pass the same conformance suite (`tests/integration/store.rs`). Migrations are numbered
//! per backend under `migrations/` and applied when a store is opened. Every query is scoped to a tenant;
//! state changes are conditional updates, never read-then-write.

mod announce;
mod database;
mod evaluations;
mod health;
mod history;
mod keys;
mod limits;
mod notifications;
mod packets;
mod postgres;
mod rate_windows;
mod records;
mod row;
mod schemas;
mod sessions;
mod sqlite;
mod statement;
mod stats;
mod tenants;
mod trust;
mod webhooks;

pub use crate::auth::sessions::SessionStore;
pub use crate::auth::store::{KeyChange, KeyStore, LimitStore, TenantStore};
pub use crate::evaluations::store::EvaluationStore;
pub use crate::evaluations::EvidenceStore;
pub use crate::packets::store::{HistoryStore, PacketStore, SchemaStore, StatsStore, StoredPacket};
pub use crate::persistence::{DatabaseHealth, StoreError};
pub use crate::records::store::RecordStore;
pub use crate::rules::store::TrustStore;
pub use crate::webhooks::store::WebhookStore;
pub use database::SqlStore;
pub use health::watch_health;
pub use sqlite::SqliteSynchronous;

use async_trait::async_trait;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgresql",
        }
    }
}

/// Every resource's store, on one database.
#[async_trait]
pub trait Store:
    KeyStore
    + TenantStore
    + LimitStore
    + SchemaStore
    + PacketStore
    + HistoryStore
    + RecordStore
    + TrustStore
    + EvaluationStore
    + EvidenceStore
    + StatsStore
    + WebhookStore
    + SessionStore
    + Send
    + Sync
    + 'static
{
    fn backend(&self) -> Backend;

    /// A trivial round trip, for `/ready`.
    async fn ping(&self) -> Result<(), StoreError>;
}

#[async_trait]
impl Store for SqlStore {
    fn backend(&self) -> Backend {
        SqlStore::backend(self)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.row(self.sql("SELECT 1")).await.map(drop)
    }
}

/// Options that only matter to one backend or to tuning.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    pub sqlite_synchronous: SqliteSynchronous,
    pub max_connections: u32,
    /// Live events a subscriber may fall behind before it is dropped.
    pub live_buffer: usize,
    /// How long a delivery is held by its first attempt from the process that wrote it
    /// (`webhooks::fresh::lease` of the attempt timeout).
    pub delivery_lease: std::time::Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            sqlite_synchronous: SqliteSynchronous::Normal,
            max_connections: 16,
            live_buffer: 4096,
            delivery_lease: crate::webhooks::fresh::lease(std::time::Duration::from_secs(10)),
        }
    }
}

/// Opens the database named by `url` (`sqlite://…` or `postgres://…`) and applies pending migrations.
pub async fn open(url: &str, options: &StoreOptions) -> anyhow::Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::open(url, options).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::open(url, options).await?))
    } else {
        anyhow::bail!(
            "unsupported database URL (expected sqlite://… or postgres://…): {}",
            redact_url(url)
        )
    }
}

/// A database URL safe to log: the password is replaced.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(
            super::redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(super::redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(super::redact_url("sqlite://./x.db"), "sqlite://./x.db");
    }
}
