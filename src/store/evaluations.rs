//! Stored evaluations: the verdict as answered, kept with the request that produced it.

use super::database::SqlStore;
use super::statement::{Param, Statement};
use super::EvaluationStore;
use super::StoreError;
use crate::evaluations::{EvaluationQuery, NewEvaluation, StoredEvaluation};
use async_trait::async_trait;
use uuid::Uuid;

/// An evaluation's insert, as `INSERT … SELECT` so that a packet's write can make it conditional on the
/// packet's row (`WHERE changes() > 0` on SQLite, `FROM written` on PostgreSQL).
pub(crate) const INSERT_EVALUATION: &str =
    "INSERT INTO evaluations (id, tenant_id, run_id, agent_id, outcome, created_at, payload, result)
     SELECT ?, ?, ?, ?, ?, ?, ?, ?";

/// Binds `new` to `insert`, a statement that starts with [`INSERT_EVALUATION`].
pub(crate) fn evaluation_insert<'a>(
    insert: Statement<'a>,
    tenant: &'a str,
    new: &'a NewEvaluation,
) -> Result<Statement<'a>, StoreError> {
    let evaluation = &new.evaluation;
    Ok(insert
        .bind(evaluation.id)
        .bind(tenant)
        .bind(&evaluation.run_id)
        .bind(&evaluation.agent_id)
        .bind(evaluation.outcome.as_str())
        .bind(evaluation.created_at)
        .bind(Param::json_text(&new.payload)?)
        .bind(Param::json_text(evaluation)?))
}

#[async_trait]
impl EvaluationStore for SqlStore {
    async fn insert_evaluation(&self, tenant: &str, new: &NewEvaluation) -> Result<(), StoreError> {
        let insert = evaluation_insert(
            Statement::new(self.backend(), INSERT_EVALUATION),
            tenant,
            new,
        )?;
        self.write_announced(insert, tenant, &new.announcement)
            .await
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
        if let Some(agent) = &query.agent_id {
            statement.push_bind(" AND agent_id = ?", agent);
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
