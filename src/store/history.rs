//! Packet history: the events written with each packet change, read per packet and as the tenant's audit
//! trail (docs/api.md §3.3).

use super::database::SqlStore;
use super::row::Row;
use super::statement::Statement;
use super::HistoryStore;
use super::StoreError;
use crate::packets::history::{AuditQuery, PacketEvent};
use async_trait::async_trait;
use uuid::Uuid;

const EVENT_COLUMNS: &str =
    "SELECT id, packet_id, event_type, actor, details, created_at FROM packet_events";

#[async_trait]
impl HistoryStore for SqlStore {
    async fn list_audit(
        &self,
        tenant: &str,
        query: &AuditQuery,
    ) -> Result<(Vec<PacketEvent>, i64), StoreError> {
        let mut page = self.sql(EVENT_COLUMNS);
        push_filters(&mut page, tenant, query);
        page.push(" ORDER BY created_at DESC, seq DESC")
            .push_limit_offset(&query.page);
        let mut count = self.sql("SELECT count(*) FROM packet_events");
        push_filters(&mut count, tenant, query);
        let (rows, total) = tokio::try_join!(self.rows(page), self.count(count))?;
        let events = rows.iter().map(event_from_row).collect::<Result<_, _>>()?;
        Ok((events, total))
    }

    async fn packet_history(&self, tenant: &str, id: Uuid) -> Result<Vec<PacketEvent>, StoreError> {
        let mut statement = self.sql(EVENT_COLUMNS);
        statement
            .push_bind(" WHERE tenant_id = ?", tenant)
            .push_bind(" AND packet_id = ? ORDER BY seq", id);
        self.rows(statement)
            .await?
            .iter()
            .map(event_from_row)
            .collect()
    }
}

/// Appends the WHERE clause shared by the audit page and its count.
fn push_filters<'q>(statement: &mut Statement<'q>, tenant: &'q str, query: &'q AuditQuery) {
    statement.push_bind(" WHERE tenant_id = ?", tenant);
    if let Some(actor) = &query.actor {
        statement.push_bind(" AND actor = ?", actor);
    }
    if let Some(action) = &query.action {
        statement.push_bind(" AND event_type = ?", action);
    }
    if let Some(packet) = query.packet_id {
        statement.push_bind(" AND packet_id = ?", packet);
    }
    if let Some(after) = query.created_after {
        statement.push_bind(" AND created_at >= ?", after);
    }
    if let Some(before) = query.created_before {
        statement.push_bind(" AND created_at <= ?", before);
    }
}

fn event_from_row(row: &Row) -> Result<PacketEvent, StoreError> {
    Ok(PacketEvent {
        id: row.id("id")?,
        packet_id: row.id("packet_id")?,
        event_type: row.text("event_type")?,
        actor: row.text("actor")?,
        details: row.document("details")?,
        timestamp: row.time("created_at")?,
    })
}
