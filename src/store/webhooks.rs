//! Webhooks and their deliveries (the outbox). Deliveries are written with the change that caused them, taken
//! for their first attempt by the writing process (`announce.rs`; a CTE in `postgres::write_packet`); workers
//! take due rows (retries, and first attempts whose lease ran out) with `FOR UPDATE SKIP LOCKED` on
//! PostgreSQL, through the one writer connection on SQLite.

use super::database::SqlStore;
use super::row::Row;
use super::statement::Statement;
use super::{Backend, StoreError, WebhookStore};
use crate::paging::Page;
use crate::timestamp::Timestamp;
use crate::webhooks::fresh::FreshDeliveries;
use crate::webhooks::signing::Secret;
use crate::webhooks::store::{AttemptRecord, Deactivation, DeliveryFigures};
use crate::webhooks::{Delivery, DeliveryStatus, TakenDelivery, Webhook};
use async_trait::async_trait;
use std::sync::Arc;
use tokio::sync::Notify;
use uuid::Uuid;

/// Deliveries still to be sent (of active hooks: [`OF_ACTIVE_HOOK`] follows).
const WAITING: &str = "status IN ('pending', 'failed') AND ";

/// The delivery's hook is active. (Checked row by row, so that the planner walks the status's partial index
/// rather than every delivery of the hooks; SQLite has no statistics to tell it which is smaller.)
const OF_ACTIVE_HOOK: &str =
    "EXISTS (SELECT 1 FROM webhooks WHERE webhooks.id = webhook_deliveries.webhook_id AND webhooks.active = ?)";

const DELIVERY_COLUMNS: &str =
    "id, webhook_id, event_id, packet_id, event_type, status, attempts, last_error,
     last_status_code, next_retry_at, delivered_at, created_at, updated_at";

/// The columns an attempt needs, its hook's URL and secret included, returned by the statements that take a
/// delivery.
pub(crate) const TAKEN_COLUMNS: &str =
    " RETURNING id, webhook_id, event_id, event_type, body, attempts,
     (SELECT url FROM webhooks WHERE webhooks.id = webhook_deliveries.webhook_id) AS url,
     (SELECT secret FROM webhooks WHERE webhooks.id = webhook_deliveries.webhook_id) AS secret";

/// One attempt's outcome per row, in [`WebhookStore::record_attempts`].
const OUTCOME_ROW: &str = "(?, ?, ?, ?, ?, ?, ?, ?)";

#[async_trait]
impl WebhookStore for SqlStore {
    async fn insert_webhook(&self, webhook: &Webhook, secret: &Secret) -> Result<(), StoreError> {
        let statement = self
            .sql(
                "INSERT INTO webhooks (id, tenant_id, url, events, secret, active, created_at, updated_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(webhook.id)
            .bind(&webhook.tenant_id)
            .bind(&webhook.url)
            .bind(webhook.events.as_slice())
            .bind(secret.expose())
            .bind(webhook.active)
            .bind(webhook.created_at)
            .bind(webhook.created_at);
        self.execute(statement).await.map(drop)
    }

    async fn list_webhooks(&self, tenant: &str) -> Result<Vec<Webhook>, StoreError> {
        let statement = self
            .sql("SELECT * FROM webhooks WHERE tenant_id = ? ORDER BY created_at, id")
            .bind(tenant);
        self.rows(statement)
            .await?
            .iter()
            .map(webhook_from)
            .collect()
    }

    async fn get_webhook(&self, tenant: &str, id: Uuid) -> Result<Option<Webhook>, StoreError> {
        let statement = self
            .sql("SELECT * FROM webhooks WHERE tenant_id = ? AND id = ?")
            .bind(tenant)
            .bind(id);
        self.optional_row(statement)
            .await?
            .as_ref()
            .map(webhook_from)
            .transpose()
    }

    async fn deactivate_webhook(
        &self,
        tenant: &str,
        id: Uuid,
        at: Timestamp,
    ) -> Result<Deactivation, StoreError> {
        let statement = self
            .sql("UPDATE webhooks SET active = ?, updated_at = ? WHERE tenant_id = ? AND id = ? AND active = ?")
            .bind(false)
            .bind(at)
            .bind(tenant)
            .bind(id)
            .bind(true);
        if self.execute(statement).await? == 1 {
            return Ok(Deactivation::Done);
        }
        Ok(match self.get_webhook(tenant, id).await? {
            Some(_) => Deactivation::AlreadyInactive,
            None => Deactivation::NotFound,
        })
    }

    async fn list_deliveries(
        &self,
        tenant: &str,
        webhook_id: Uuid,
        status: Option<DeliveryStatus>,
        page: Page,
    ) -> Result<Vec<Delivery>, StoreError> {
        let mut statement = self
            .sql(&format!(
                "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE tenant_id = ? AND webhook_id = ?"
            ))
            .bind(tenant)
            .bind(webhook_id);
        if let Some(status) = status {
            statement.push_bind(" AND status = ?", status.as_str());
        }
        statement
            .push(" ORDER BY created_at DESC, id DESC")
            .push_limit_offset(&page);
        self.rows(statement)
            .await?
            .iter()
            .map(delivery_from)
            .collect()
    }

    async fn list_dead_letters(
        &self,
        tenant: &str,
        page: Page,
    ) -> Result<Vec<Delivery>, StoreError> {
        let mut statement = self
            .sql(&format!(
                "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE tenant_id = ? AND status = 'dead_letter'"
            ))
            .bind(tenant);
        statement
            .push(" ORDER BY updated_at DESC, id DESC")
            .push_limit_offset(&page);
        self.rows(statement)
            .await?
            .iter()
            .map(delivery_from)
            .collect()
    }

    async fn take_due(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: i64,
    ) -> Result<Vec<TakenDelivery>, StoreError> {
        let mut statement = self.take("attempts = attempts + 1", now, lease_until);
        statement.push(" WHERE id IN (");
        self.push_due(&mut statement, now, limit);
        if self.backend() == Backend::Postgres {
            statement.push(" FOR UPDATE SKIP LOCKED");
        }
        statement.push(")").push(TAKEN_COLUMNS);
        self.write_rows(statement)
            .await?
            .iter()
            .map(taken_from)
            .collect()
    }

    fn deliveries_waiting(&self) -> Arc<Notify> {
        self.deliveries_requeued.clone()
    }

    fn fresh_deliveries(&self) -> Arc<FreshDeliveries> {
        self.fresh_deliveries.clone()
    }

    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        self.row(self.next_due_statement())
            .await?
            .optional_time("due")
    }

    async fn record_attempts(&self, records: &[AttemptRecord]) -> Result<Vec<Uuid>, StoreError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let mut statement = self.sql(
            "WITH outcome (delivery_id, attempt, status, status_code, error, retry_at, delivered_at, at) AS (VALUES ",
        );
        for (index, record) in records.iter().enumerate() {
            let delivered_at = (record.status == DeliveryStatus::Delivered).then_some(record.at);
            statement
                .push(if index == 0 { "" } else { ", " })
                .push(OUTCOME_ROW)
                .param(record.delivery_id)
                .param(record.attempt)
                .param(record.status.as_str())
                .param(record.status_code.map(i64::from))
                .param(record.error.as_deref())
                .param(record.next_retry_at)
                .param(delivered_at)
                .param(record.at);
        }
        statement.push(
            ") UPDATE webhook_deliveries SET status = outcome.status, last_status_code = outcome.status_code,
                     last_error = outcome.error, next_retry_at = outcome.retry_at,
                     delivered_at = COALESCE(outcome.delivered_at, webhook_deliveries.delivered_at),
                     updated_at = outcome.at
               FROM outcome
               WHERE webhook_deliveries.id = outcome.delivery_id AND webhook_deliveries.attempts = outcome.attempt
               RETURNING webhook_deliveries.id",
        );
        self.write_rows(statement)
            .await?
            .iter()
            .map(|row| row.id("id"))
            .collect()
    }

    async fn deactivate_gone(&self, webhook_id: Uuid, at: Timestamp) -> Result<(), StoreError> {
        let statement = self
            .sql("UPDATE webhooks SET active = ?, updated_at = ? WHERE id = ?")
            .bind(false)
            .bind(at)
            .bind(webhook_id);
        self.execute(statement).await.map(drop)
    }

    async fn take_dead_letter(
        &self,
        tenant: &str,
        id: Uuid,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Option<TakenDelivery>, StoreError> {
        let mut statement = self.take("status = 'failed', attempts = 1", now, lease_until);
        statement
            .push_bind(
                " WHERE tenant_id = ? AND id = ? AND status = 'dead_letter'",
                tenant,
            )
            .param(id)
            .push(" AND ")
            .push_bind(OF_ACTIVE_HOOK, true)
            .push(TAKEN_COLUMNS);
        self.write_returning(statement)
            .await?
            .as_ref()
            .map(taken_from)
            .transpose()
    }

    async fn requeue_dead_letters(&self, now: Timestamp) -> Result<i64, StoreError> {
        let mut statement = self
            .sql(
                "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_retry_at = ?, updated_at = ?
                 WHERE status = 'dead_letter' AND ",
            )
            .bind(now)
            .bind(now);
        statement.push_bind(OF_ACTIVE_HOOK, true);
        Ok(self.execute(statement).await? as i64)
    }

    async fn delivery_figures(&self, since: Timestamp) -> Result<DeliveryFigures, StoreError> {
        let hooks = self.sql(
            "SELECT count(*) AS webhooks, COALESCE(sum(CASE WHEN active THEN 1 ELSE 0 END), 0) AS active
             FROM webhooks",
        );
        let mut outbox = self.sql(
            "SELECT count(*) AS depth, min(created_at) AS oldest FROM webhook_deliveries WHERE ",
        );
        outbox.push(WAITING).push_bind(OF_ACTIVE_HOOK, true);
        let recent = self
            .sql(
                "SELECT COALESCE(sum(CASE WHEN status = 'delivered' THEN 1 ELSE 0 END), 0) AS delivered,
                        COALESCE(sum(CASE WHEN status IN ('failed', 'dead_letter') THEN 1 ELSE 0 END), 0) AS failed,
                        count(*) AS total
                 FROM webhook_deliveries WHERE updated_at >= ?",
            )
            .bind(since);
        let dead = self.sql("SELECT count(*) FROM webhook_deliveries WHERE status = 'dead_letter'");
        let latency = self
            .sql("SELECT created_at, delivered_at FROM webhook_deliveries WHERE status = 'delivered' AND delivered_at >= ? LIMIT 10000")
            .bind(since);
        let (hooks, outbox, recent, dead_letters, latencies) = tokio::try_join!(
            self.row(hooks),
            self.row(outbox),
            self.row(recent),
            self.count(dead),
            self.rows(latency)
        )?;
        let now = Timestamp::now();
        let oldest = outbox.optional_time("oldest")?;
        let mut total_ms = 0.0;
        for row in &latencies {
            let (created, delivered) = (row.time("created_at")?, row.time("delivered_at")?);
            total_ms += (delivered.micros() - created.micros()) as f64 / 1000.0;
        }
        Ok(DeliveryFigures {
            webhooks: hooks.integer("webhooks")?,
            active_webhooks: hooks.integer("active")?,
            outbox_depth: outbox.integer("depth")?,
            dead_letters,
            oldest_pending_age_seconds: oldest
                .map(|at| (now.micros() - at.micros()).max(0) as f64 / 1_000_000.0),
            delivered_last_hour: recent.integer("delivered")?,
            failed_last_hour: recent.integer("failed")?,
            avg_delivery_latency_ms: (!latencies.is_empty())
                .then(|| total_ms / latencies.len() as f64),
        })
    }
}

impl SqlStore {
    /// Appends the ids of the first `limit` deliveries due at `now`, earliest first.
    fn push_due(&self, statement: &mut Statement<'_>, now: Timestamp, limit: i64) {
        statement
            .push("SELECT id FROM webhook_deliveries WHERE ")
            .push(WAITING)
            .push_bind(OF_ACTIVE_HOOK, true)
            .push_bind(
                " AND next_retry_at <= ? ORDER BY next_retry_at LIMIT ?",
                now,
            )
            .param(limit);
    }

    fn next_due_statement(&self) -> Statement<'static> {
        let mut statement =
            self.sql("SELECT min(next_retry_at) AS due FROM webhook_deliveries WHERE ");
        statement.push(WAITING).push_bind(OF_ACTIVE_HOOK, true);
        statement
    }

    /// The head of a statement that takes deliveries for an attempt: `set`, and the row held until
    /// `lease_until`.
    fn take<'a>(&self, set: &str, now: Timestamp, lease_until: Timestamp) -> Statement<'a> {
        self.sql(&format!(
            "UPDATE webhook_deliveries SET {set}, next_retry_at = ?, updated_at = ?"
        ))
        .bind(lease_until)
        .bind(now)
    }
}

pub(crate) fn taken_from(row: &Row) -> Result<TakenDelivery, StoreError> {
    let webhook_id = row.id("webhook_id")?;
    let hook_gone = || StoreError::Corrupt(format!("webhook {webhook_id} is gone"));
    Ok(TakenDelivery {
        id: row.id("id")?,
        webhook_id,
        event_id: row.id("event_id")?,
        event_type: row.text("event_type")?,
        body: row.text("body")?,
        attempt: row.integer("attempts")?,
        url: row.optional_text("url")?.ok_or_else(hook_gone)?,
        secret: Secret::new(row.optional_text("secret")?.ok_or_else(hook_gone)?),
    })
}

fn webhook_from(row: &Row) -> Result<Webhook, StoreError> {
    Ok(Webhook {
        id: row.id("id")?,
        url: row.text("url")?,
        events: row.texts("events")?,
        tenant_id: row.text("tenant_id")?,
        active: row.bool("active")?,
        created_at: row.time("created_at")?,
    })
}

fn delivery_from(row: &Row) -> Result<Delivery, StoreError> {
    let status = row.text("status")?;
    Ok(Delivery {
        id: row.id("id")?,
        webhook_id: row.id("webhook_id")?,
        event_id: row.id("event_id")?,
        packet_id: row.optional_id("packet_id")?,
        event_type: row.text("event_type")?,
        status: DeliveryStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("delivery status {status}")))?,
        attempts: row.integer("attempts")?,
        last_error: row.optional_text("last_error")?,
        last_status_code: row.optional_integer("last_status_code")?,
        next_retry_at: row.optional_time("next_retry_at")?,
        delivered_at: row.optional_time("delivered_at")?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreOptions;

    /// What SQLite plans for `statement` (one line per step).
    async fn plan(store: &SqlStore, statement: Statement<'_>) -> String {
        let (sql, params) = statement.into_parts();
        let mut explain = Statement::new(Backend::Sqlite, &format!("EXPLAIN QUERY PLAN {sql}"));
        for param in params {
            explain.param(param);
        }
        let rows = store.rows(explain).await.expect("plan");
        rows.iter()
            .map(|row| row.text("detail").expect("detail"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Regression: with the hook checked by `webhook_id IN (…)`, SQLite (which keeps no statistics) walked the
    /// hook's index, so every take and every next-retry read scanned all the deliveries the hook ever had.
    #[tokio::test]
    async fn waiting_deliveries_are_found_through_the_due_index() {
        let dir = tempfile::tempdir().expect("dir");
        let url = format!("sqlite://{}", dir.path().join("plan.db").display());
        let store = crate::store::sqlite::open(&url, &StoreOptions::default())
            .await
            .expect("open");
        let mut due = store.sql("");
        store.push_due(&mut due, Timestamp::now(), 64);
        for statement in [due, store.next_due_statement()] {
            let plan = plan(&store, statement).await;
            assert!(
                plan.contains("USING INDEX webhook_deliveries_due"),
                "{plan}"
            );
            assert!(!plan.contains("webhook_deliveries_hook"), "{plan}");
        }
    }
}
