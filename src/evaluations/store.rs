//! What evaluations need stored: each verdict as answered, with the request that produced it. Implemented by
//! `crate::store`.

use super::{EvaluationQuery, NewEvaluation, StoredEvaluation};
use crate::persistence::StoreError;
use async_trait::async_trait;
use uuid::Uuid;

#[async_trait]
pub trait EvaluationStore: Send + Sync {
    /// Stores an evaluation with its webhook outbox rows, atomically; then publishes its live event.
    async fn insert_evaluation(&self, tenant: &str, new: &NewEvaluation) -> Result<(), StoreError>;
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
}
