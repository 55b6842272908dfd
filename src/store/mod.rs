//! Persistence: one `Store` trait, implemented for SQLite (embedded default) and PostgreSQL (production).
//!
//! Both implementations pass the same conformance suite (`tests/integration/store.rs`). Migrations are
//! numbered per backend under `migrations/` and applied when a store is opened. Every query is scoped to a
//! tenant; state changes are conditional updates, never read-then-write.

mod health;
mod postgres;
mod rate_windows;
mod sqlite;

pub use health::DatabaseHealth;

pub use postgres::PostgresStore;
pub use sqlite::{SqliteStore, SqliteSynchronous};

use crate::auth::limits::{RateCounts, RateHit};
use crate::auth::tenants::{Tenant, TenantWrite};
use crate::auth::{ApiKey, NewApiKey};
use crate::evaluations::{EvaluationQuery, StoredEvaluation};
use crate::packets::history::{AuditQuery, NewEvent, PacketEvent};
use crate::packets::listing::{PacketPage, PacketQuery, SearchQuery};
use crate::packets::model::Packet;
use crate::packets::schemas::Schema;
use crate::packets::stats::{PacketStats, SystemFigures};
use crate::records::{Record, RecordQuery, RecordSummary, Seal, SealedRecord};
use crate::rules::TrustedEndpoint;
use crate::timestamp::Timestamp;
use async_trait::async_trait;
use std::sync::Arc;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached, or did not answer in time: callers answer 503 and may retry.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// The database refused work it should do (a bug, or a broken database): callers answer 500.
    #[error("database error: {0}")]
    Database(String),
    #[error("migration failed: {0}")]
    Migration(String),
    /// A row that the database returned could not be read back (a bug or a hand-edited row).
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// The store did not answer within the caller's deadline.
    pub fn timed_out() -> Self {
        StoreError::Unavailable("the database did not answer in time".into())
    }

    /// Whether retrying later may succeed (the database was out of reach), as opposed to a failure of the
    /// work itself.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// The driver's errors stay inside the store: callers see only whether the database was out of reach.
impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_) => StoreError::Unavailable(error.to_string()),
            other => StoreError::Database(other.to_string()),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migration(error.to_string())
    }
}

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

/// A packet with the revision its conditional update must name.
#[derive(Clone, Debug)]
pub struct StoredPacket {
    pub packet: Packet,
    pub revision: i64,
    /// When the expiry task expires it for an unanswered checkpoint (docs/api.md decision 7).
    pub hitl_deadline: Option<Timestamp>,
}

/// Outcome of revoking or rotating a key, decided by one conditional statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyChange {
    Done,
    AlreadyRevoked,
    NotFound,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    fn backend(&self) -> Backend;

    /// A trivial round trip, for `/ready`.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Stores `key` only if no key was ever bootstrapped; true when this call did it.
    async fn bootstrap_admin_key(&self, key: &NewApiKey) -> Result<bool, StoreError>;
    /// Stores an operator-chosen key unless its hash is already present (revoked keys stay revoked), and
    /// marks bootstrap as done; true when the key was inserted.
    async fn seed_api_key(&self, key: &NewApiKey) -> Result<bool, StoreError>;
    async fn insert_api_key(&self, key: &NewApiKey) -> Result<(), StoreError>;
    async fn find_api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKey>, StoreError>;
    /// The tenant's keys, revoked ones included, newest first.
    async fn list_api_keys(&self, tenant: &str) -> Result<Vec<ApiKey>, StoreError>;
    async fn revoke_api_key(&self, tenant: &str, id: Uuid) -> Result<KeyChange, StoreError>;
    /// Revokes `id` and stores `replacement` in one transaction.
    async fn rotate_api_key(
        &self,
        tenant: &str,
        id: Uuid,
        replacement: &NewApiKey,
    ) -> Result<KeyChange, StoreError>;
    /// The key `id` of `tenant`, to copy its attributes on rotation.
    async fn get_api_key(&self, tenant: &str, id: Uuid) -> Result<Option<ApiKey>, StoreError>;

    /// Stores a new tenant unless a live tenant already has its name.
    async fn insert_tenant(&self, tenant: &Tenant) -> Result<TenantWrite, StoreError>;
    /// Live tenants, newest first.
    async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError>;
    /// A live tenant.
    async fn get_tenant(&self, id: &str) -> Result<Option<Tenant>, StoreError>;
    /// Writes a live tenant's fields (not its id or creation time).
    async fn update_tenant(&self, tenant: &Tenant) -> Result<TenantWrite, StoreError>;
    /// Marks a live tenant deleted; NotFound when there is none.
    async fn delete_tenant(&self, id: &str, at: Timestamp) -> Result<TenantWrite, StoreError>;

    /// Counts one request in its rate windows (docs/api.md §5.4) and returns the counts including it.
    async fn count_request(&self, hit: &RateHit) -> Result<RateCounts, StoreError>;
    /// Takes back a counted request from a minute window (it was refused).
    async fn refund_request(&self, minute_scope: &str, second: i64) -> Result<(), StoreError>;
    /// Uses one of `cap` daily creates of `tenant` on `day`; false when they are all used.
    async fn take_daily_slot(&self, tenant: &str, day: i64, cap: u64) -> Result<bool, StoreError>;
    /// Forgets rate windows that ended before `second` and daily counts older than yesterday.
    async fn prune_limits(&self, second: i64) -> Result<(), StoreError>;

    /// Registers a schema for its tenant.
    async fn insert_schema(&self, schema: &Schema) -> Result<(), StoreError>;
    /// The tenant's schema `id`.
    async fn get_schema(&self, tenant: &str, id: Uuid) -> Result<Option<Schema>, StoreError>;
    /// The tenant's schemas, newest first, and how many it has.
    async fn list_schemas(
        &self,
        tenant: &str,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<Schema>, i64), StoreError>;

    /// Inserts a new packet and its history events atomically.
    async fn insert_packet(
        &self,
        tenant: &str,
        packet: &Packet,
        events: &[NewEvent],
        hitl_deadline: Option<Timestamp>,
    ) -> Result<(), StoreError>;
    async fn get_packet(&self, tenant: &str, id: Uuid) -> Result<Option<StoredPacket>, StoreError>;
    /// Writes `packet` (and appends `events`) only if its stored revision is still `expected_revision`;
    /// false when another writer got there first.
    async fn replace_packet(
        &self,
        tenant: &str,
        expected_revision: i64,
        packet: &Packet,
        events: &[NewEvent],
        hitl_deadline: Option<Timestamp>,
    ) -> Result<bool, StoreError>;
    async fn list_packets(
        &self,
        tenant: &str,
        query: &PacketQuery,
    ) -> Result<PacketPage, StoreError>;
    /// Full-text search over summaries and context, most relevant first (an exact summary match before
    /// anything else); `total` counts every hit.
    async fn search_packets(
        &self,
        tenant: &str,
        query: &SearchQuery,
    ) -> Result<PacketPage, StoreError>;
    /// Counts over one tenant's packets, or every tenant's when `tenant` is None; `packets_since` counts
    /// those created at or after `since`.
    async fn packet_stats(
        &self,
        tenant: Option<&str>,
        since: Timestamp,
    ) -> Result<PacketStats, StoreError>;
    /// Packets awaiting a human, oldest first.
    /// Figures across every tenant for `/system/health`; `hour_start` picks the rate window counted.
    async fn system_figures(&self, hour_start: i64) -> Result<SystemFigures, StoreError>;
    async fn list_awaiting(
        &self,
        tenant: &str,
        limit: i64,
        offset: i64,
    ) -> Result<PacketPage, StoreError>;
    /// The tenant's history events matching `query`, newest first, and how many match in all.
    async fn list_audit(
        &self,
        tenant: &str,
        query: &AuditQuery,
    ) -> Result<(Vec<PacketEvent>, i64), StoreError>;
    /// History of one packet, oldest first (empty when the packet is not the tenant's).
    async fn packet_history(&self, tenant: &str, id: Uuid) -> Result<Vec<PacketEvent>, StoreError>;
    /// Appends sealed records in one transaction (the recorder's batch). A record whose id is already stored
    /// is left as it was (a re-import, or a copy of a record that must not replace it); those ids are returned.
    async fn insert_records(&self, records: &[SealedRecord]) -> Result<Vec<Uuid>, StoreError>;
    /// A record of the tenant's, with its bodies.
    async fn get_record(&self, tenant: &str, id: Uuid) -> Result<Option<SealedRecord>, StoreError>;
    /// The tenant's records matching `query`, newest first, and whether more follow.
    async fn list_records(
        &self,
        tenant: &str,
        query: &RecordQuery,
    ) -> Result<(Vec<RecordSummary>, bool), StoreError>;
    /// The most recent record of `run_id` tagged with `action` (and made by `agent_id`, when given).
    async fn latest_record_for_action(
        &self,
        tenant: &str,
        run_id: &str,
        action: &str,
        agent_id: Option<&str>,
    ) -> Result<Option<SealedRecord>, StoreError>;

    async fn insert_trusted_endpoint(
        &self,
        tenant: &str,
        endpoint: &TrustedEndpoint,
    ) -> Result<(), StoreError>;
    /// The tenant's trusted endpoints, oldest first.
    async fn list_trusted_endpoints(
        &self,
        tenant: &str,
    ) -> Result<Vec<TrustedEndpoint>, StoreError>;
    /// True when the endpoint existed (in this tenant) and is now gone.
    async fn delete_trusted_endpoint(&self, tenant: &str, id: Uuid) -> Result<bool, StoreError>;

    async fn insert_evaluation(
        &self,
        tenant: &str,
        evaluation: &StoredEvaluation,
        payload: &serde_json::Value,
    ) -> Result<(), StoreError>;
    async fn get_evaluation(
        &self,
        tenant: &str,
        id: Uuid,
    ) -> Result<Option<StoredEvaluation>, StoreError>;
    /// Newest first, and whether more follow.
    async fn list_evaluations(
        &self,
        tenant: &str,
        query: &EvaluationQuery,
    ) -> Result<(Vec<StoredEvaluation>, bool), StoreError>;

    /// (tenant, id) of live packets created before `ttl_cutoff` or waiting past their deadline at `now`.
    async fn due_for_expiry(
        &self,
        ttl_cutoff: Timestamp,
        now: Timestamp,
        limit: i64,
    ) -> Result<Vec<(String, Uuid)>, StoreError>;
}

/// Summaries from stored record documents (bodies are not read), and whether a row beyond `limit` exists.
pub(crate) fn record_summaries(
    documents: impl Iterator<Item = Result<String, sqlx::Error>>,
    limit: i64,
) -> Result<(Vec<RecordSummary>, bool), StoreError> {
    let mut summaries = Vec::new();
    for document in documents {
        let document: serde_json::Value = serde_json::from_str(&document?)
            .map_err(|error| StoreError::Corrupt(format!("record document: {error}")))?;
        let record = Record::from_parts(document, Vec::new(), Vec::new())
            .map_err(|error| StoreError::Corrupt(format!("record document: {error}")))?;
        summaries.push(record.summary());
    }
    let has_more = summaries.len() as i64 > limit;
    summaries.truncate(limit.max(0) as usize);
    Ok((summaries, has_more))
}

/// A sealed record from the stored parts: the document without bodies, the bodies, the seal.
pub(crate) fn sealed_record(
    document: &str,
    request_body: Vec<u8>,
    response_body: Vec<u8>,
    seal: Seal,
) -> Result<SealedRecord, StoreError> {
    let corrupt =
        |error: serde_json::Error| StoreError::Corrupt(format!("record document: {error}"));
    let document = serde_json::from_str(document).map_err(corrupt)?;
    let record = Record::from_parts(document, request_body, response_body).map_err(corrupt)?;
    Ok(SealedRecord { record, seal })
}

/// A write that broke a unique index (a live tenant's name) is a refusal, not a failure.
pub(crate) fn unique_violation<T>(
    result: Result<T, sqlx::Error>,
) -> Result<Result<T, TenantWrite>, StoreError> {
    match result {
        Ok(value) => Ok(Ok(value)),
        Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
            Ok(Err(TenantWrite::NameTaken))
        }
        Err(error) => Err(error.into()),
    }
}

/// Records per INSERT statement: many rows per statement, bounded so that one statement stays a reasonable
/// message (SQLite allows 32,766 bound values; bodies of up to 10 MiB each are bound too).
const RECORDS_PER_STATEMENT: usize = 256;
const BODY_BYTES_PER_STATEMENT: usize = 16 << 20;

/// `records` cut into runs that each make one multi-row INSERT: at most `RECORDS_PER_STATEMENT` rows and, unless
/// a single record is larger, `BODY_BYTES_PER_STATEMENT` bytes of bodies.
pub(crate) fn insert_chunks(records: &[SealedRecord]) -> Vec<&[SealedRecord]> {
    let mut chunks = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (index, sealed) in records.iter().enumerate() {
        let size = sealed.record.request_body.len() + sealed.record.response_body.len();
        if index > start
            && (index - start == RECORDS_PER_STATEMENT || bytes + size > BODY_BYTES_PER_STATEMENT)
        {
            chunks.push(&records[start..index]);
            (start, bytes) = (index, 0);
        }
        bytes += size;
    }
    if start < records.len() {
        chunks.push(&records[start..]);
    }
    chunks
}

/// The ids of `records` that an `INSERT … ON CONFLICT (id) DO NOTHING RETURNING id` did not insert: stored
/// before, or repeated within the same batch (the first copy wins).
pub(crate) fn not_inserted(records: &[SealedRecord], inserted: Vec<Uuid>) -> Vec<Uuid> {
    let mut inserted: std::collections::HashSet<Uuid> = inserted.into_iter().collect();
    records
        .iter()
        .map(|sealed| sealed.record.id)
        .filter(|id| !inserted.remove(id))
        .collect()
}

/// Evaluations from stored result documents, and whether a row beyond `limit` exists.
pub(crate) fn evaluations_from(
    documents: impl Iterator<Item = Result<String, sqlx::Error>>,
    limit: i64,
) -> Result<(Vec<StoredEvaluation>, bool), StoreError> {
    let mut evaluations = Vec::new();
    for document in documents {
        evaluations.push(
            serde_json::from_str(&document?)
                .map_err(|error| StoreError::Corrupt(format!("evaluation: {error}")))?,
        );
    }
    let has_more = evaluations.len() as i64 > limit;
    evaluations.truncate(limit.max(0) as usize);
    Ok((evaluations, has_more))
}

/// Options that only matter to one backend or to tuning.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    pub sqlite_synchronous: SqliteSynchronous,
    pub max_connections: u32,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            sqlite_synchronous: SqliteSynchronous::Normal,
            max_connections: 16,
        }
    }
}

/// Opens the database named by `url` (`sqlite://…` or `postgres://…`) and applies pending migrations.
pub async fn open(url: &str, options: &StoreOptions) -> anyhow::Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::open(url, options).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::open(url, options).await?))
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
    use crate::records::{Record, RecordKey, SealedRecord};

    fn records(count: usize, body_bytes: usize) -> Vec<SealedRecord> {
        let key = RecordKey::generate();
        let template: Record =
            serde_json::from_str(include_str!("../../fixtures/records/get-order.json"))
                .expect("fixture record");
        (0..count)
            .map(|_| {
                let mut record = template.clone();
                record.id = uuid::Uuid::now_v7();
                record.response_body = vec![b'x'; body_bytes];
                key.seal(record)
            })
            .collect()
    }

    #[test]
    fn inserts_are_cut_by_rows_and_by_body_bytes() {
        let many = records(600, 10);
        let sizes: Vec<usize> = super::insert_chunks(&many)
            .iter()
            .map(|c| c.len())
            .collect();
        assert_eq!(sizes, [256, 256, 88]);

        // 6 MiB bodies: two fit under 16 MiB, the third starts a new statement; one alone may exceed it.
        let large = records(5, 6 << 20);
        let sizes: Vec<usize> = super::insert_chunks(&large)
            .iter()
            .map(|c| c.len())
            .collect();
        assert_eq!(sizes, [2, 2, 1]);
        let huge = records(2, 20 << 20);
        let sizes: Vec<usize> = super::insert_chunks(&huge)
            .iter()
            .map(|c| c.len())
            .collect();
        assert_eq!(sizes, [1, 1]);
        assert!(super::insert_chunks(&[]).is_empty());
    }

    #[test]
    fn ids_not_returned_by_the_insert_were_already_stored() {
        let mut batch = records(3, 0);
        batch.push(batch[0].clone());
        let ids: Vec<_> = batch.iter().map(|sealed| sealed.record.id).collect();
        // The first and the third were inserted; the second existed; the repeat of the first lost.
        let already = super::not_inserted(&batch, vec![ids[2], ids[0]]);
        assert_eq!(already, [ids[1], ids[0]]);
    }

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
