//! Packets: a JSON document beside the columns that lists filter on, written with their history events
//! atomically and replaced only under the revision the writer read (a conditional update).

use super::database::{Pools, SqlStore};
use super::row::Row;
use super::statement::{Param, Statement};
use super::{postgres, sqlite, Backend, StoreError};
use super::{PacketStore, StoredPacket};
use crate::announce::{Announcement, LiveNotice};
use crate::evaluations::NewEvaluation;
use crate::packets::history::NewEvent;
use crate::packets::listing::{PacketPage, PacketQuery, SearchQuery, VerificationFilter};
use crate::packets::model::Packet;
use crate::paging::Page;
use crate::timestamp::Timestamp;
use async_trait::async_trait;
use std::sync::Arc;
use uuid::Uuid;

#[async_trait]
impl PacketStore for SqlStore {
    async fn insert_packet(
        &self,
        tenant: &str,
        packet: &Packet,
        events: &[NewEvent],
        announcement: &Announcement,
        hitl_deadline: Option<Timestamp>,
        evaluation: Option<&NewEvaluation>,
    ) -> Result<(), StoreError> {
        let write = PacketWrite {
            tenant,
            packet,
            hitl_deadline,
        };
        let appended = Appended { events, evaluation };
        self.write_packet(
            write.insert(self.backend())?,
            tenant,
            &appended,
            announcement,
        )
        .await?;
        if hitl_deadline.is_some() {
            self.deadline_set.notify_one();
        }
        Ok(())
    }

    async fn get_packet(&self, tenant: &str, id: Uuid) -> Result<Option<StoredPacket>, StoreError> {
        let statement = self
            .sql("SELECT doc, revision, hitl_deadline FROM packets WHERE tenant_id = ? AND id = ?")
            .bind(tenant)
            .bind(id);
        let Some(row) = self.optional_row(statement).await? else {
            return Ok(None);
        };
        Ok(Some(StoredPacket {
            packet: row.document("doc")?,
            revision: row.integer("revision")?,
            hitl_deadline: row.optional_time("hitl_deadline")?,
        }))
    }

    async fn replace_packet(
        &self,
        tenant: &str,
        expected_revision: i64,
        packet: &Packet,
        events: &[NewEvent],
        announcement: &Announcement,
        hitl_deadline: Option<Timestamp>,
    ) -> Result<bool, StoreError> {
        let write = PacketWrite {
            tenant,
            packet,
            hitl_deadline,
        };
        let update = write.update(self.backend(), expected_revision)?;
        let appended = Appended {
            events,
            evaluation: None,
        };
        let written = self
            .write_packet(update, tenant, &appended, announcement)
            .await?
            == 1;
        if written && hitl_deadline.is_some() {
            self.deadline_set.notify_one();
        }
        Ok(written)
    }

    async fn list_packets(
        &self,
        tenant: &str,
        query: &PacketQuery,
    ) -> Result<PacketPage, StoreError> {
        let mut page = self.sql("SELECT doc FROM packets");
        push_filters(&mut page, tenant, query);
        page.push_newest_first("created_at", &query.page);
        let mut count = self.sql("SELECT count(*) FROM packets");
        push_filters(&mut count, tenant, query);
        // The page and the count are independent reads: run them side by side.
        let (rows, total) = tokio::try_join!(self.rows(page), self.count(count))?;
        let mut packets = packets_from(&rows)?;
        let has_more = query.page.cut(&mut packets);
        Ok(PacketPage {
            packets,
            total,
            has_more,
        })
    }

    async fn search_packets(
        &self,
        tenant: &str,
        query: &SearchQuery,
    ) -> Result<PacketPage, StoreError> {
        let (page, count) = match self.backend() {
            Backend::Sqlite => match sqlite::search_statements(tenant, query) {
                Some(statements) => statements,
                None => return Ok(PacketPage::default()),
            },
            Backend::Postgres => postgres::search_statements(tenant, query),
        };
        let (rows, total) = tokio::try_join!(self.rows(page), self.count(count))?;
        whole_page(&rows, total)
    }

    async fn list_awaiting(&self, tenant: &str, page: Page) -> Result<PacketPage, StoreError> {
        let mut oldest_first = self
            .sql("SELECT doc FROM packets WHERE tenant_id = ? AND status = 'awaiting_human'")
            .bind(tenant);
        oldest_first
            .push(" ORDER BY created_at ASC, id ASC")
            .push_limit_offset(&page);
        let count = self
            .sql("SELECT count(*) FROM packets WHERE tenant_id = ? AND status = 'awaiting_human'")
            .bind(tenant);
        let (rows, total) = tokio::try_join!(self.rows(oldest_first), self.count(count))?;
        whole_page(&rows, total)
    }

    async fn next_expiry(&self, ttl: std::time::Duration) -> Result<Option<Timestamp>, StoreError> {
        let deadline = self.sql(
            "SELECT min(hitl_deadline) AS due FROM packets WHERE status = 'awaiting_human' AND hitl_deadline IS NOT NULL",
        );
        let oldest = self.sql(
            "SELECT min(created_at) AS due FROM packets WHERE status NOT IN ('completed', 'expired')",
        );
        let (deadline, oldest) = tokio::try_join!(self.row(deadline), self.row(oldest))?;
        let ttl_due = oldest
            .optional_time("due")?
            .map(|created| created.after(ttl));
        Ok([deadline.optional_time("due")?, ttl_due]
            .into_iter()
            .flatten()
            .min())
    }

    fn live_events(&self) -> tokio::sync::broadcast::Receiver<Arc<LiveNotice>> {
        self.live.subscribe()
    }

    fn deadline_set(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.deadline_set.clone()
    }

    async fn due_for_expiry(
        &self,
        ttl_cutoff: Timestamp,
        now: Timestamp,
        limit: i64,
    ) -> Result<Vec<(String, Uuid)>, StoreError> {
        let statement = self
            .sql(
                "SELECT tenant_id, id FROM packets WHERE status NOT IN ('completed', 'expired') AND created_at < ?
                 UNION
                 SELECT tenant_id, id FROM packets WHERE status = 'awaiting_human' AND hitl_deadline <= ?
                 LIMIT ?",
            )
            .bind(ttl_cutoff)
            .bind(now)
            .bind(limit);
        self.rows(statement)
            .await?
            .iter()
            .map(|row| Ok((row.text("tenant_id")?, row.id("id")?)))
            .collect()
    }
}

impl SqlStore {
    /// Runs a packet insert or conditional update with what it appends (history events, an evaluation) and
    /// webhook outbox rows, atomically, the way the backend does it best; the rows written (0 or 1). Wakes the delivery
    /// worker when it wrote deliveries; publishes the live event once the write is committed (PostgreSQL's
    /// `NOTIFY` in the statement does that for every instance, this one included).
    async fn write_packet(
        &self,
        write: Statement<'_>,
        tenant: &str,
        appended: &Appended<'_>,
        announcement: &Announcement,
    ) -> Result<u64, StoreError> {
        let written = match &self.pools {
            Pools::Sqlite { .. } => {
                sqlite::write_packet(self, write, tenant, appended, &announcement.outbox).await
            }
            Pools::Postgres(pool) => {
                postgres::write_packet(self, pool, write, tenant, appended, announcement).await
            }
        }?;
        if written.rows == 1 {
            self.announced(written.deliveries, announcement);
        }
        Ok(written.rows)
    }
}

/// What a packet write appends for the row it wrote, in the same transaction: the packet's history events and,
/// for a new verified packet, the evaluation of its claims.
pub(crate) struct Appended<'a> {
    pub events: &'a [NewEvent],
    pub evaluation: Option<&'a NewEvaluation>,
}

/// What a packet write wrote: the packet row (0 or 1) and webhook deliveries, taken for their first attempt.
#[derive(Debug, Default)]
pub(crate) struct Written {
    pub rows: u64,
    pub deliveries: Vec<crate::webhooks::TakenDelivery>,
}

/// A packet write: the row's columns, shared by the insert and the conditional update; each backend adds
/// its history events (in the same transaction on SQLite, in the same statement on PostgreSQL).
struct PacketWrite<'a> {
    tenant: &'a str,
    packet: &'a Packet,
    hitl_deadline: Option<Timestamp>,
}

impl<'a> PacketWrite<'a> {
    fn insert(&self, backend: Backend) -> Result<Statement<'a>, StoreError> {
        let packet = self.packet;
        Ok(Statement::new(
            backend,
            "INSERT INTO packets (id, tenant_id, status, revision, source_agent_id, target_agent_id, priority, tags,
                                  parent_packet_id, created_at, updated_at, hitl_deadline, verification, doc)
             VALUES (?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(packet.id)
        .bind(self.tenant)
        .bind(packet.status.as_str())
        .bind(&packet.metadata.source_agent.id)
        .bind(&packet.metadata.target_agent.id)
        .bind(packet.metadata.priority.as_str())
        .bind(packet.metadata.tags.as_slice())
        .bind(packet.parent_packet_id)
        .bind(packet.created_at)
        .bind(packet.updated_at)
        .bind(self.hitl_deadline)
        .bind(self.verification())
        .bind(Param::document(packet)?))
    }

    /// The outcome of the packet's claims, for the `verification=` filter.
    fn verification(&self) -> Option<&'static str> {
        self.packet
            .verification
            .as_ref()
            .map(|verification| verification.outcome.as_str())
    }

    fn update(
        &self,
        backend: Backend,
        expected_revision: i64,
    ) -> Result<Statement<'a>, StoreError> {
        let packet = self.packet;
        Ok(Statement::new(
            backend,
            "UPDATE packets SET status = ?, revision = revision + 1, target_agent_id = ?, updated_at = ?,
                                hitl_deadline = ?, verification = ?, doc = ?
             WHERE tenant_id = ? AND id = ? AND revision = ? RETURNING id",
        )
        .bind(packet.status.as_str())
        .bind(&packet.metadata.target_agent.id)
        .bind(packet.updated_at)
        .bind(self.hitl_deadline)
        .bind(self.verification())
        .bind(Param::document(packet)?)
        .bind(self.tenant)
        .bind(packet.id)
        .bind(expected_revision))
    }
}

/// Appends the WHERE clause shared by a listing's page query and its count.
fn push_filters<'q>(statement: &mut Statement<'q>, tenant: &'q str, query: &'q PacketQuery) {
    statement.push_bind(" WHERE tenant_id = ?", tenant);
    if !query.statuses.is_empty() {
        statement
            .push(" AND status IN")
            .push_list(query.statuses.iter().map(String::as_str));
    }
    for (column, value) in [
        ("source_agent_id", &query.source_agent),
        ("target_agent_id", &query.target_agent),
        ("priority", &query.priority),
    ] {
        if let Some(value) = value {
            statement.push_bind(&format!(" AND {column} = ?"), value);
        }
    }
    if !query.tags.is_empty() {
        match statement.backend() {
            Backend::Sqlite => sqlite::push_has_tags(statement, &query.tags),
            Backend::Postgres => {
                statement.push_bind(" AND tags @> ?", query.tags.as_slice());
            }
        }
    }
    if let Some(after) = query.created_after {
        statement.push_bind(" AND created_at >= ?", after);
    }
    if let Some(before) = query.created_before {
        statement.push_bind(" AND created_at <= ?", before);
    }
    if let Some(parent) = query.parent {
        statement.push_bind(" AND parent_packet_id = ?", parent);
    }
    push_verification(statement, "", query.verification);
    statement.push_after_cursor("created_at", &query.page);
}

/// Appends a search's exact filters (status, priority) on the packets table, its columns named with `table`
/// (`p.` when the search joins it).
pub(crate) fn push_search_filters<'q>(
    statement: &mut Statement<'q>,
    table: &str,
    query: &'q SearchQuery,
) {
    for (column, value) in [("status", &query.status), ("priority", &query.priority)] {
        if let Some(value) = value {
            statement.push_bind(&format!(" AND {table}{column} = ?"), value);
        }
    }
    push_verification(statement, table, query.verification);
}

/// `verification=`: the claims' outcome, or no claims at all.
fn push_verification(
    statement: &mut Statement<'_>,
    table: &str,
    filter: Option<VerificationFilter>,
) {
    match filter.map(VerificationFilter::outcome) {
        None => {}
        Some(Some(outcome)) => {
            statement.push_bind(&format!(" AND {table}verification = ?"), outcome.as_str());
        }
        Some(None) => {
            statement.push(&format!(" AND {table}verification IS NULL"));
        }
    }
}

fn packets_from(rows: &[Row]) -> Result<Vec<Packet>, StoreError> {
    rows.iter().map(|row| row.document("doc")).collect()
}

/// A page that is the whole answer (search and the human queue have no cursor).
fn whole_page(rows: &[Row], total: i64) -> Result<PacketPage, StoreError> {
    Ok(PacketPage {
        packets: packets_from(rows)?,
        total,
        has_more: false,
    })
}
