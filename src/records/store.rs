//! What evidence needs stored: sealed records, appended in batches and never changed. Implemented by
//! `crate::store`.

use super::{RecordQuery, RecordSummary, SealedRecord};
use crate::persistence::StoreError;
use async_trait::async_trait;
use uuid::Uuid;

#[async_trait]
pub trait RecordStore: Send + Sync {
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
    /// The tenant's newest `limit` records (of `run_id`, when given), with bodies, oldest first.
    async fn export_records(
        &self,
        tenant: &str,
        run_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<SealedRecord>, StoreError>;
    /// The most recent record of `run_id` tagged with `action` (and made by `agent_id`, when given).
    async fn latest_record_for_action(
        &self,
        tenant: &str,
        run_id: &str,
        action: &str,
        agent_id: Option<&str>,
    ) -> Result<Option<SealedRecord>, StoreError>;
}
