//! Stored evaluations: the verdict as answered, kept with the request that produced it.

use super::database::SqlStore;
use super::statement::Param;
use super::EvaluationStore;
use super::StoreError;
use crate::announce::Announcement;
use crate::evaluations::{EvaluationQuery, StoredEvaluation};
use async_trait::async_trait;
use uuid::Uuid;

#[async_trait]
impl EvaluationStore for SqlStore {
    async fn insert_evaluation(
        &self,
        tenant: &str,
        evaluation: &StoredEvaluation,
        payload: &serde_json::Value,
        announcement: &Announcement,
    ) -> Result<(), StoreError> {
        let statement = self
            .sql(
                "INSERT INTO evaluations (id, tenant_id, run_id, agent_id, outcome, created_at, payload, result)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(evaluation.id)
            .bind(tenant)
            .bind(&evaluation.run_id)
            .bind(&evaluation.agent_id)
            .bind(evaluation.outcome.as_str())
            .bind(evaluation.created_at)
            .bind(Param::json_text(payload)?)
            .bind(Param::json_text(evaluation)?);
        self.write_announced(statement, tenant, announcement).await
    }

    async fn get_evaluation(
        &self,
        tenant: &str,
        id: Uuid,
    ) -> Result<Option<StoredEvaluation>, StoreError> {
        let statement = self
            .sql("SELECT result FROM evaluations WHERE tenant_id = ? AND id = ?")
            .bind(tenant)
            .bind(id);
        self.optional_row(statement)
            .await?
            .map(|row| row.json_text("result"))
            .transpose()
    }

    async fn list_evaluations(
        &self,
        tenant: &str,
        query: &EvaluationQuery,
    ) -> Result<(Vec<StoredEvaluation>, bool), StoreError> {
        let mut statement = self
            .sql("SELECT result FROM evaluations WHERE tenant_id = ?")
            .bind(tenant);
        if let Some(run) = &query.run_id {
            statement.push_bind(" AND run_id = ?", run);
        }
        if let Some(outcome) = query.outcome {
            statement.push_bind(" AND outcome = ?", outcome.as_str());
        }
        statement
            .push_after_cursor("created_at", &query.page)
            .push_newest_first("created_at", &query.page);
        let mut evaluations = self
            .rows(statement)
            .await?
            .iter()
            .map(|row| row.json_text("result"))
            .collect::<Result<Vec<StoredEvaluation>, _>>()?;
        let has_more = query.page.cut(&mut evaluations);
        Ok((evaluations, has_more))
    }
}
