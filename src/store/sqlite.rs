//! SQLite store: one file in WAL mode, one writer connection (SQLite serialises writers anyway, and a
//! single connection turns lock contention into a queue) and a pool of readers.

use super::rate_windows::MemoryCounters;
use super::{
    evaluations_from, insert_chunks, not_inserted, record_summaries, sealed_record,
    unique_violation, Backend, KeyChange, Store, StoreError, StoreOptions, StoredPacket,
};
use crate::auth::limits::{RateCounts, RateHit, TENANT_HOUR_SCOPE};
use crate::auth::tenants::{Tenant, TenantWrite};
use crate::auth::{ApiKey, NewApiKey, Role, Tier};
use crate::evaluations::{EvaluationQuery, StoredEvaluation};
use crate::packets::history::{AuditQuery, NewEvent, PacketEvent};
use crate::packets::listing::{PacketPage, PacketQuery, SearchQuery};
use crate::packets::model::Packet;
use crate::packets::schemas::Schema;
use crate::packets::stats::{AgentCount, PacketStats, SystemFigures};
use crate::records::{RecordQuery, RecordSummary, Seal, SealedRecord};
use crate::rules::TrustedEndpoint;
use crate::timestamp::Timestamp;
use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
};
use sqlx::{QueryBuilder, Row, Sqlite, Transaction};
use std::str::FromStr;
use std::time::Duration;
use uuid::Uuid;

/// How hard SQLite syncs commits. `Normal` in WAL mode survives a process crash; `Full` also power loss.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum SqliteSynchronous {
    #[default]
    Normal,
    Full,
}

/// Write transactions begin IMMEDIATE: the write lock is taken (waiting up to the busy timeout) before the
/// first read, so a transaction never has to upgrade a stale read snapshot, which SQLite refuses at once with
/// SQLITE_BUSY when another process (a second instance on the same file) wrote in between.
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    /// Request windows of the rate limits: this process owns the file, so they live in its memory.
    rate_windows: MemoryCounters,
}

impl SqliteStore {
    pub async fn open(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        let synchronous = match options.sqlite_synchronous {
            SqliteSynchronous::Normal => sqlx::sqlite::SqliteSynchronous::Normal,
            SqliteSynchronous::Full => sqlx::sqlite::SqliteSynchronous::Full,
        };
        let connect = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let file = connect.get_filename();
        if file != std::path::Path::new(":memory:") {
            crate::data_dir::private_file(file)
                .map_err(|error| StoreError::Database(format!("{}: {error}", file.display())))?;
        }
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(connect.clone())
            .await?;
        sqlx::migrate!("migrations/sqlite").run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(options.max_connections.clamp(1, 8))
            .connect_with(connect.read_only(true))
            .await?;
        Ok(Self {
            writer,
            reader,
            rate_windows: MemoryCounters::default(),
        })
    }
}

fn key_from_row(row: &SqliteRow) -> Result<ApiKey, StoreError> {
    let id: String = row.try_get("id")?;
    let role: String = row.try_get("role")?;
    let tier: String = row.try_get("tier")?;
    let created_at: i64 = row.try_get("created_at")?;
    Ok(ApiKey {
        id: parse_uuid(&id)?,
        name: row.try_get("name")?,
        key_prefix: row.try_get("key_prefix")?,
        tenant_id: row.try_get("tenant_id")?,
        role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("role {role}")))?,
        tier: Tier::parse(&tier).ok_or_else(|| StoreError::Corrupt(format!("tier {tier}")))?,
        revoked: row.try_get::<i64, _>("revoked")? != 0,
        created_at: micros_to_timestamp(created_at)?,
        system: row.try_get::<i64, _>("system")? != 0,
    })
}

fn packet_from_row(row: &SqliteRow) -> Result<Packet, StoreError> {
    let doc: String = row.try_get("doc")?;
    serde_json::from_str(&doc)
        .map_err(|error| StoreError::Corrupt(format!("packet document: {error}")))
}

fn sealed_record_from_row(row: &SqliteRow) -> Result<SealedRecord, StoreError> {
    let seal = Seal {
        sha256: row.try_get("sha256")?,
        key_id: row.try_get("key_id")?,
        signature: row.try_get("signature")?,
    };
    sealed_record(
        &row.try_get::<String, _>("doc")?,
        row.try_get("request_body")?,
        row.try_get("response_body")?,
        seal,
    )
}

fn parse_uuid(text: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(text).map_err(|_| StoreError::Corrupt(format!("uuid {text}")))
}

fn event_from_row(row: &SqliteRow) -> Result<PacketEvent, StoreError> {
    let details: String = row.try_get("details")?;
    Ok(PacketEvent {
        id: parse_uuid(&row.try_get::<String, _>("id")?)?,
        packet_id: parse_uuid(&row.try_get::<String, _>("packet_id")?)?,
        event_type: row.try_get("event_type")?,
        actor: row.try_get("actor")?,
        details: serde_json::from_str(&details)
            .map_err(|error| StoreError::Corrupt(error.to_string()))?,
        timestamp: micros_to_timestamp(row.try_get("created_at")?)?,
    })
}

/// A page that is the whole answer (search and the human queue have no cursor).
fn single_page(rows: &[SqliteRow], total: i64) -> Result<PacketPage, StoreError> {
    let packets = rows.iter().map(packet_from_row).collect::<Result<_, _>>()?;
    Ok(PacketPage {
        packets,
        total,
        has_more: false,
    })
}

fn tenant_from_row(row: &SqliteRow) -> Result<Tenant, StoreError> {
    Ok(Tenant {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        tier: row.try_get("tier")?,
        handoffs_per_day: row.try_get("handoffs_per_day")?,
        max_api_keys: row.try_get("max_api_keys")?,
        created_at: micros_to_timestamp(row.try_get("created_at")?)?,
        updated_at: micros_to_timestamp(row.try_get("updated_at")?)?,
        deleted_at: row
            .try_get::<Option<i64>, _>("deleted_at")?
            .map(micros_to_timestamp)
            .transpose()?,
    })
}

fn schema_from_row(row: &SqliteRow) -> Result<Schema, StoreError> {
    let document: String = row.try_get("json_schema")?;
    Ok(Schema {
        id: parse_uuid(&row.try_get::<String, _>("id")?)?,
        name: row.try_get("name")?,
        version: row.try_get("version")?,
        json_schema: serde_json::from_str(&document)
            .map_err(|error| StoreError::Corrupt(format!("schema document: {error}")))?,
        tenant_id: row.try_get("tenant_id")?,
        created_at: micros_to_timestamp(row.try_get("created_at")?)?,
    })
}

fn micros_to_timestamp(micros: i64) -> Result<Timestamp, StoreError> {
    Timestamp::from_micros(micros).ok_or_else(|| StoreError::Corrupt(format!("time {micros}")))
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|error| StoreError::Corrupt(error.to_string()))
}

async fn insert_key(tx: &mut Transaction<'_, Sqlite>, key: &NewApiKey) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "INSERT INTO api_keys (id, name, key_hash, key_prefix, tenant_id, role, tier, revoked, rotated_from, created_at, system)
         VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?) ON CONFLICT (key_hash) DO NOTHING",
    )
    .bind(key.key.id.to_string())
    .bind(&key.key.name)
    .bind(&key.key_hash)
    .bind(&key.key.key_prefix)
    .bind(&key.key.tenant_id)
    .bind(key.key.role.as_str())
    .bind(key.key.tier.as_str())
    .bind(key.rotated_from.map(|id| id.to_string()))
    .bind(key.key.created_at.micros())
    .bind(i64::from(key.key.system))
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

async fn mark_bootstrapped(
    tx: &mut Transaction<'_, Sqlite>,
    key: &NewApiKey,
) -> Result<u64, StoreError> {
    let done = sqlx::query("INSERT INTO bootstrap (id, key_id, created_at) VALUES (1, ?, ?) ON CONFLICT (id) DO NOTHING")
        .bind(key.key.id.to_string())
        .bind(key.key.created_at.micros())
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected())
}

async fn insert_events(
    tx: &mut Transaction<'_, Sqlite>,
    tenant: &str,
    events: &[NewEvent],
) -> Result<(), StoreError> {
    for event in events {
        sqlx::query(
            "INSERT INTO packet_events (id, packet_id, tenant_id, event_type, actor, details, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(event.id.to_string())
        .bind(event.packet_id.to_string())
        .bind(tenant)
        .bind(&event.event_type)
        .bind(&event.actor)
        .bind(to_json(&event.details)?)
        .bind(event.timestamp.micros())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Appends the WHERE clause shared by a listing's page query and its count.
fn push_filters<'q>(
    builder: &mut QueryBuilder<'q, Sqlite>,
    tenant: &'q str,
    query: &'q PacketQuery,
) {
    builder.push(" WHERE tenant_id = ").push_bind(tenant);
    if !query.statuses.is_empty() {
        builder.push(" AND status IN (");
        let mut list = builder.separated(", ");
        for status in &query.statuses {
            list.push_bind(status.as_str());
        }
        builder.push(")");
    }
    if let Some(agent) = &query.source_agent {
        builder
            .push(" AND source_agent_id = ")
            .push_bind(agent.as_str());
    }
    if let Some(agent) = &query.target_agent {
        builder
            .push(" AND target_agent_id = ")
            .push_bind(agent.as_str());
    }
    if let Some(priority) = &query.priority {
        builder
            .push(" AND priority = ")
            .push_bind(priority.as_str());
    }
    for tag in &query.tags {
        builder
            .push(" AND EXISTS (SELECT 1 FROM json_each(packets.tags) WHERE json_each.value = ")
            .push_bind(tag.as_str())
            .push(")");
    }
    if let Some(after) = query.created_after {
        builder
            .push(" AND created_at >= ")
            .push_bind(after.micros());
    }
    if let Some(before) = query.created_before {
        builder
            .push(" AND created_at <= ")
            .push_bind(before.micros());
    }
    if let Some(cursor) = &query.cursor {
        builder
            .push(" AND (created_at < ")
            .push_bind(cursor.created_at.micros())
            .push(" OR (created_at = ")
            .push_bind(cursor.created_at.micros())
            .push(" AND id < ")
            .push_bind(cursor.id.to_string())
            .push("))");
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    async fn bootstrap_admin_key(&self, key: &NewApiKey) -> Result<bool, StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        if mark_bootstrapped(&mut tx, key).await? == 0 {
            return Ok(false);
        }
        insert_key(&mut tx, key).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn seed_api_key(&self, key: &NewApiKey) -> Result<bool, StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let inserted = insert_key(&mut tx, key).await? == 1;
        mark_bootstrapped(&mut tx, key).await?;
        tx.commit().await?;
        Ok(inserted)
    }

    async fn insert_api_key(&self, key: &NewApiKey) -> Result<(), StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        insert_key(&mut tx, key).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn find_api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKey>, StoreError> {
        let row = sqlx::query("SELECT * FROM api_keys WHERE key_hash = ?")
            .bind(key_hash)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(key_from_row).transpose()
    }

    async fn list_api_keys(&self, tenant: &str) -> Result<Vec<ApiKey>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM api_keys WHERE tenant_id = ? ORDER BY created_at DESC, id DESC",
        )
        .bind(tenant)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(key_from_row).collect()
    }

    async fn get_api_key(&self, tenant: &str, id: Uuid) -> Result<Option<ApiKey>, StoreError> {
        let row = sqlx::query("SELECT * FROM api_keys WHERE tenant_id = ? AND id = ?")
            .bind(tenant)
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(key_from_row).transpose()
    }

    async fn revoke_api_key(&self, tenant: &str, id: Uuid) -> Result<KeyChange, StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let outcome = revoke_in(&mut tx, tenant, id).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    async fn rotate_api_key(
        &self,
        tenant: &str,
        id: Uuid,
        replacement: &NewApiKey,
    ) -> Result<KeyChange, StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let outcome = revoke_in(&mut tx, tenant, id).await?;
        if outcome == KeyChange::Done {
            insert_key(&mut tx, replacement).await?;
            tx.commit().await?;
        }
        Ok(outcome)
    }

    async fn insert_tenant(&self, tenant: &Tenant) -> Result<TenantWrite, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO tenants (id, name, tier, handoffs_per_day, max_api_keys, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&tenant.id)
        .bind(&tenant.name)
        .bind(&tenant.tier)
        .bind(tenant.handoffs_per_day)
        .bind(tenant.max_api_keys)
        .bind(tenant.created_at.micros())
        .bind(tenant.updated_at.micros())
        .execute(&self.writer)
        .await;
        Ok(unique_violation(inserted)?.map_or_else(|refusal| refusal, |_| TenantWrite::Done))
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM tenants WHERE deleted_at IS NULL ORDER BY created_at DESC, id DESC",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(tenant_from_row).collect()
    }

    async fn get_tenant(&self, id: &str) -> Result<Option<Tenant>, StoreError> {
        let row = sqlx::query("SELECT * FROM tenants WHERE id = ? AND deleted_at IS NULL")
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(tenant_from_row).transpose()
    }

    async fn update_tenant(&self, tenant: &Tenant) -> Result<TenantWrite, StoreError> {
        let updated = sqlx::query(
            "UPDATE tenants SET name = ?, tier = ?, handoffs_per_day = ?, max_api_keys = ?, updated_at = ?
             WHERE id = ? AND deleted_at IS NULL",
        )
        .bind(&tenant.name)
        .bind(&tenant.tier)
        .bind(tenant.handoffs_per_day)
        .bind(tenant.max_api_keys)
        .bind(tenant.updated_at.micros())
        .bind(&tenant.id)
        .execute(&self.writer)
        .await;
        Ok(match unique_violation(updated)? {
            Ok(done) if done.rows_affected() == 0 => TenantWrite::NotFound,
            Ok(_) => TenantWrite::Done,
            Err(refusal) => refusal,
        })
    }

    async fn delete_tenant(&self, id: &str, at: Timestamp) -> Result<TenantWrite, StoreError> {
        let deleted = sqlx::query(
            "UPDATE tenants SET deleted_at = ?, updated_at = ? WHERE id = ? AND deleted_at IS NULL",
        )
        .bind(at.micros())
        .bind(at.micros())
        .bind(id)
        .execute(&self.writer)
        .await?;
        Ok(if deleted.rows_affected() == 0 {
            TenantWrite::NotFound
        } else {
            TenantWrite::Done
        })
    }

    async fn count_request(&self, hit: &RateHit) -> Result<RateCounts, StoreError> {
        Ok(self.rate_windows.count(hit))
    }

    async fn refund_request(&self, minute_scope: &str, second: i64) -> Result<(), StoreError> {
        self.rate_windows.refund(minute_scope, second);
        Ok(())
    }

    async fn take_daily_slot(&self, tenant: &str, day: i64, cap: u64) -> Result<bool, StoreError> {
        let used: Option<i64> = sqlx::query_scalar(
            "INSERT INTO daily_creates AS d (tenant_id, day, used) VALUES (?1, ?2, 1)
             ON CONFLICT (tenant_id, day) DO UPDATE SET used = d.used + 1 WHERE d.used < ?3
             RETURNING used",
        )
        .bind(tenant)
        .bind(day)
        .bind(i64::try_from(cap).unwrap_or(i64::MAX))
        .fetch_optional(&self.writer)
        .await?;
        Ok(used.is_some())
    }

    async fn prune_limits(&self, second: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM daily_creates WHERE day < ?")
            .bind(second.div_euclid(86_400) - 1)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn insert_schema(&self, schema: &Schema) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO schemas (id, tenant_id, name, version, json_schema, created_at)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(schema.id.to_string())
        .bind(&schema.tenant_id)
        .bind(&schema.name)
        .bind(schema.version)
        .bind(schema.json_schema.to_string())
        .bind(schema.created_at.micros())
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn get_schema(&self, tenant: &str, id: Uuid) -> Result<Option<Schema>, StoreError> {
        let row = sqlx::query("SELECT * FROM schemas WHERE tenant_id = ? AND id = ?")
            .bind(tenant)
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(schema_from_row).transpose()
    }

    async fn list_schemas(
        &self,
        tenant: &str,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<Schema>, i64), StoreError> {
        let page = sqlx::query(
            "SELECT * FROM schemas WHERE tenant_id = ?
             ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
        )
        .bind(tenant)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.reader);
        let count = sqlx::query_scalar("SELECT count(*) FROM schemas WHERE tenant_id = ?")
            .bind(tenant)
            .fetch_one(&self.reader);
        let (rows, total) = tokio::try_join!(page, count)?;
        let schemas = rows.iter().map(schema_from_row).collect::<Result<_, _>>()?;
        Ok((schemas, total))
    }

    async fn insert_packet(
        &self,
        tenant: &str,
        packet: &Packet,
        events: &[NewEvent],
        hitl_deadline: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(
            "INSERT INTO packets (id, tenant_id, status, revision, source_agent_id, target_agent_id, priority, tags,
                                  parent_packet_id, created_at, updated_at, hitl_deadline, doc)
             VALUES (?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(packet.id.to_string())
        .bind(tenant)
        .bind(packet.status.as_str())
        .bind(&packet.metadata.source_agent.id)
        .bind(&packet.metadata.target_agent.id)
        .bind(packet.metadata.priority.as_str())
        .bind(to_json(&packet.metadata.tags)?)
        .bind(packet.parent_packet_id.map(|id| id.to_string()))
        .bind(packet.created_at.micros())
        .bind(packet.updated_at.micros())
        .bind(hitl_deadline.map(|at| at.micros()))
        .bind(to_json(packet)?)
        .execute(&mut *tx)
        .await?;
        insert_events(&mut tx, tenant, events).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_packet(&self, tenant: &str, id: Uuid) -> Result<Option<StoredPacket>, StoreError> {
        let row = sqlx::query(
            "SELECT doc, revision, hitl_deadline FROM packets WHERE tenant_id = ? AND id = ?",
        )
        .bind(tenant)
        .bind(id.to_string())
        .fetch_optional(&self.reader)
        .await?;
        match row {
            Some(row) => Ok(Some(StoredPacket {
                packet: packet_from_row(&row)?,
                revision: row.try_get("revision")?,
                hitl_deadline: row
                    .try_get::<Option<i64>, _>("hitl_deadline")?
                    .map(micros_to_timestamp)
                    .transpose()?,
            })),
            None => Ok(None),
        }
    }

    async fn replace_packet(
        &self,
        tenant: &str,
        expected_revision: i64,
        packet: &Packet,
        events: &[NewEvent],
        hitl_deadline: Option<Timestamp>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let done = sqlx::query(
            "UPDATE packets SET status = ?, revision = revision + 1, target_agent_id = ?, updated_at = ?,
                                hitl_deadline = ?, doc = ?
             WHERE tenant_id = ? AND id = ? AND revision = ?",
        )
        .bind(packet.status.as_str())
        .bind(&packet.metadata.target_agent.id)
        .bind(packet.updated_at.micros())
        .bind(hitl_deadline.map(|at| at.micros()))
        .bind(to_json(packet)?)
        .bind(tenant)
        .bind(packet.id.to_string())
        .bind(expected_revision)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        insert_events(&mut tx, tenant, events).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn list_packets(
        &self,
        tenant: &str,
        query: &PacketQuery,
    ) -> Result<PacketPage, StoreError> {
        let mut page = QueryBuilder::new("SELECT doc FROM packets");
        push_filters(&mut page, tenant, query);
        let offset = if query.cursor.is_some() {
            0
        } else {
            query.offset
        };
        page.push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .push_bind(query.limit + 1)
            .push(" OFFSET ")
            .push_bind(offset);
        let mut count = QueryBuilder::new("SELECT COUNT(*) FROM packets");
        push_filters(&mut count, tenant, query);
        // The page and the count are independent reads: run them side by side.
        let (rows, total) = tokio::try_join!(
            page.build().fetch_all(&self.reader),
            count.build_query_scalar::<i64>().fetch_one(&self.reader)
        )?;
        let mut packets = rows
            .iter()
            .map(packet_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let has_more = packets.len() as i64 > query.limit;
        packets.truncate(query.limit.max(0) as usize);
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
        let Some(words) = query.fts5_words() else {
            return Ok(PacketPage {
                packets: Vec::new(),
                total: 0,
                has_more: false,
            });
        };
        let filters = "packets_fts MATCH ?1 AND p.tenant_id = ?2
                       AND (?3 IS NULL OR p.status = ?3) AND (?4 IS NULL OR p.priority = ?4)";
        // Summary hits weigh ten times context hits; bm25 is lower for better matches.
        let rows = sqlx::query(&format!(
            "SELECT p.doc FROM packets_fts JOIN packets p ON p.rowid = packets_fts.rowid
             WHERE {filters}
             ORDER BY lower(json_extract(p.doc, '$.context.summary')) = lower(?5) DESC,
                      bm25(packets_fts, 10.0, 1.0), p.created_at DESC, p.id DESC
             LIMIT ?6 OFFSET ?7"
        ))
        .bind(&words)
        .bind(tenant)
        .bind(&query.status)
        .bind(&query.priority)
        .bind(&query.text)
        .bind(query.limit)
        .bind(query.offset)
        .fetch_all(&self.reader)
        .await?;
        let total: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM packets_fts JOIN packets p ON p.rowid = packets_fts.rowid WHERE {filters}"
        ))
        .bind(&words)
        .bind(tenant)
        .bind(&query.status)
        .bind(&query.priority)
        .fetch_one(&self.reader)
        .await?;
        single_page(&rows, total)
    }

    async fn packet_stats(
        &self,
        tenant: Option<&str>,
        since: Timestamp,
    ) -> Result<PacketStats, StoreError> {
        let by_status = sqlx::query(
            "SELECT status, count(*) AS n FROM packets WHERE (?1 IS NULL OR tenant_id = ?1) GROUP BY status",
        )
        .bind(tenant)
        .fetch_all(&self.reader);
        let recent = sqlx::query_scalar(
            "SELECT count(*) FROM packets WHERE (?1 IS NULL OR tenant_id = ?1) AND created_at >= ?2",
        )
        .bind(tenant)
        .bind(since.micros())
        .fetch_one(&self.reader);
        let claim_time = sqlx::query_scalar(
            "SELECT avg((julianday(json_extract(doc, '$.metadata.claimed_at'))
                         - julianday(created_at / 1000000.0, 'unixepoch')) * 86400.0)
             FROM packets WHERE (?1 IS NULL OR tenant_id = ?1)
               AND status IN ('claimed', 'in_progress', 'completed')
               AND json_extract(doc, '$.metadata.claimed_at') IS NOT NULL",
        )
        .bind(tenant)
        .fetch_one(&self.reader);
        let (rows, packets_since, avg_claim_time_seconds) =
            tokio::try_join!(by_status, recent, claim_time)?;
        let mut stats = PacketStats {
            packets_since,
            avg_claim_time_seconds,
            ..PacketStats::default()
        };
        for row in rows {
            let count: i64 = row.try_get("n")?;
            stats.total_packets += count;
            stats
                .packets_by_status
                .insert(row.try_get("status")?, count);
        }
        Ok(stats)
    }

    async fn system_figures(&self, hour_start: i64) -> Result<SystemFigures, StoreError> {
        let complete_time = sqlx::query_scalar(
            "SELECT avg(updated_at / 1000000.0
                        - (julianday(json_extract(doc, '$.metadata.claimed_at')) - 2440587.5) * 86400.0)
             FROM packets WHERE status = 'completed' AND json_extract(doc, '$.metadata.claimed_at') IS NOT NULL",
        )
        .fetch_one(&self.reader);
        let active_agents = sqlx::query_scalar(
            "SELECT count(DISTINCT target_agent_id) FROM packets
             WHERE status IN ('claimed', 'in_progress', 'awaiting_human')",
        )
        .fetch_one(&self.reader);
        let agents_seen = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT source_agent_id FROM packets UNION SELECT target_agent_id FROM packets)",
        )
        .fetch_one(&self.reader);
        let top_agents = sqlx::query(
            "SELECT agent_id, count(*) AS n FROM (SELECT source_agent_id AS agent_id FROM packets
                                                  UNION ALL SELECT target_agent_id FROM packets)
             GROUP BY agent_id ORDER BY n DESC, agent_id LIMIT 5",
        )
        .fetch_all(&self.reader);
        let oldest_waiting =
            sqlx::query_scalar("SELECT min(created_at) FROM packets WHERE status = 'created'")
                .fetch_one(&self.reader);
        let active_keys = sqlx::query_scalar("SELECT count(*) FROM api_keys WHERE revoked = 0")
            .fetch_one(&self.reader);
        let size = sqlx::query_scalar(
            "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
        )
        .fetch_one(&self.reader);
        let (complete, active_agents, total_agents_seen, top, oldest, active_api_keys, size) = tokio::try_join!(
            complete_time,
            active_agents,
            agents_seen,
            top_agents,
            oldest_waiting,
            active_keys,
            size
        )?;
        let oldest: Option<i64> = oldest;
        Ok(SystemFigures {
            avg_time_to_complete_seconds: complete,
            active_agents,
            total_agents_seen,
            top_agents: top
                .iter()
                .map(|row| {
                    Ok(AgentCount {
                        agent_id: row.try_get("agent_id")?,
                        packet_count: row.try_get("n")?,
                    })
                })
                .collect::<Result<_, StoreError>>()?,
            oldest_waiting_created_at: oldest.map(micros_to_timestamp).transpose()?,
            active_api_keys,
            db_size_bytes: Some(size),
            connection_pool: None,
            requests_this_hour_by_tenant: self
                .rate_windows
                .hour_counts(TENANT_HOUR_SCOPE, hour_start),
        })
    }

    async fn list_awaiting(
        &self,
        tenant: &str,
        limit: i64,
        offset: i64,
    ) -> Result<PacketPage, StoreError> {
        let rows = sqlx::query(
            "SELECT doc FROM packets WHERE tenant_id = ? AND status = 'awaiting_human'
             ORDER BY created_at ASC, id ASC LIMIT ? OFFSET ?",
        )
        .bind(tenant)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.reader)
        .await?;
        let total: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM packets WHERE tenant_id = ? AND status = 'awaiting_human'",
        )
        .bind(tenant)
        .fetch_one(&self.reader)
        .await?;
        single_page(&rows, total)
    }

    async fn packet_history(&self, tenant: &str, id: Uuid) -> Result<Vec<PacketEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, packet_id, event_type, actor, details, created_at FROM packet_events
             WHERE tenant_id = ? AND packet_id = ? ORDER BY seq",
        )
        .bind(tenant)
        .bind(id.to_string())
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(event_from_row).collect()
    }

    async fn list_audit(
        &self,
        tenant: &str,
        query: &AuditQuery,
    ) -> Result<(Vec<PacketEvent>, i64), StoreError> {
        let filters =
            "tenant_id = ?1 AND (?2 IS NULL OR actor = ?2) AND (?3 IS NULL OR event_type = ?3)
                       AND (?4 IS NULL OR packet_id = ?4) AND (?5 IS NULL OR created_at >= ?5)
                       AND (?6 IS NULL OR created_at <= ?6)";
        let packet_id = query.packet_id.map(|id| id.to_string());
        let after = query.created_after.map(|at| at.micros());
        let before = query.created_before.map(|at| at.micros());
        let page_sql = format!(
            "SELECT id, packet_id, event_type, actor, details, created_at FROM packet_events
             WHERE {filters} ORDER BY created_at DESC, seq DESC LIMIT ?7 OFFSET ?8"
        );
        let count_sql = format!("SELECT count(*) FROM packet_events WHERE {filters}");
        let page = sqlx::query(&page_sql)
            .bind(tenant)
            .bind(&query.actor)
            .bind(&query.action)
            .bind(&packet_id)
            .bind(after)
            .bind(before)
            .bind(query.limit)
            .bind(query.offset)
            .fetch_all(&self.reader);
        let count = sqlx::query_scalar(&count_sql)
            .bind(tenant)
            .bind(&query.actor)
            .bind(&query.action)
            .bind(&packet_id)
            .bind(after)
            .bind(before)
            .fetch_one(&self.reader);
        let (rows, total) = tokio::try_join!(page, count)?;
        let events = rows.iter().map(event_from_row).collect::<Result<_, _>>()?;
        Ok((events, total))
    }

    async fn insert_records(&self, records: &[SealedRecord]) -> Result<Vec<Uuid>, StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let mut inserted = Vec::with_capacity(records.len());
        for chunk in insert_chunks(records) {
            let documents: Vec<String> = chunk
                .iter()
                .map(|sealed| sealed.record.document_without_bodies())
                .collect();
            let mut builder = QueryBuilder::<Sqlite>::new(
                "INSERT INTO records (id, tenant_id, run_id, agent_id, action, method, host, status, provenance,
                                      started_at, sha256, key_id, signature, doc, request_body, response_body) ",
            );
            builder.push_values(
                chunk.iter().zip(documents),
                |mut row, (sealed, document)| {
                    let record = &sealed.record;
                    row.push_bind(record.id.to_string())
                        .push_bind(&record.tenant_id)
                        .push_bind(&record.run_id)
                        .push_bind(&record.agent_id)
                        .push_bind(&record.action)
                        .push_bind(&record.method)
                        .push_bind(record.host())
                        .push_bind(record.status.map(i64::from))
                        .push_bind(record.provenance.as_str())
                        .push_bind(record.timings.started_at.micros())
                        .push_bind(&sealed.seal.sha256)
                        .push_bind(&sealed.seal.key_id)
                        .push_bind(&sealed.seal.signature)
                        .push_bind(document)
                        .push_bind(&record.request_body)
                        .push_bind(&record.response_body);
                },
            );
            builder.push(" ON CONFLICT (id) DO NOTHING RETURNING id");
            for id in builder
                .build_query_scalar::<String>()
                .fetch_all(&mut *tx)
                .await?
            {
                inserted.push(
                    Uuid::parse_str(&id)
                        .map_err(|error| StoreError::Corrupt(format!("record id: {error}")))?,
                );
            }
        }
        tx.commit().await?;
        Ok(not_inserted(records, inserted))
    }

    async fn get_record(&self, tenant: &str, id: Uuid) -> Result<Option<SealedRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT sha256, key_id, signature, doc, request_body, response_body FROM records
             WHERE tenant_id = ? AND id = ?",
        )
        .bind(tenant)
        .bind(id.to_string())
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(sealed_record_from_row).transpose()
    }

    async fn list_records(
        &self,
        tenant: &str,
        query: &RecordQuery,
    ) -> Result<(Vec<RecordSummary>, bool), StoreError> {
        let mut builder = QueryBuilder::<Sqlite>::new("SELECT doc FROM records WHERE tenant_id = ");
        builder.push_bind(tenant);
        for (column, value) in [
            ("run_id", &query.run_id),
            ("agent_id", &query.agent_id),
            ("action", &query.action),
            ("host", &query.host),
        ] {
            if let Some(value) = value {
                builder
                    .push(format!(" AND {column} = "))
                    .push_bind(value.as_str());
            }
        }
        if let Some(status) = query.status {
            builder.push(" AND status = ").push_bind(i64::from(status));
        }
        if let Some(cursor) = &query.cursor {
            builder
                .push(" AND (started_at < ")
                .push_bind(cursor.started_at.micros())
                .push(" OR (started_at = ")
                .push_bind(cursor.started_at.micros())
                .push(" AND id < ")
                .push_bind(cursor.id.to_string())
                .push("))");
        }
        builder
            .push(" ORDER BY started_at DESC, id DESC LIMIT ")
            .push_bind(query.limit + 1);
        let rows = builder.build().fetch_all(&self.reader).await?;
        record_summaries(
            rows.iter().map(|row| row.try_get::<String, _>("doc")),
            query.limit,
        )
    }

    async fn latest_record_for_action(
        &self,
        tenant: &str,
        run_id: &str,
        action: &str,
        agent_id: Option<&str>,
    ) -> Result<Option<SealedRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT sha256, key_id, signature, doc, request_body, response_body FROM records
             WHERE tenant_id = ? AND run_id = ? AND action = ? AND (? IS NULL OR agent_id = ?)
             ORDER BY started_at DESC, id DESC LIMIT 1",
        )
        .bind(tenant)
        .bind(run_id)
        .bind(action)
        .bind(agent_id)
        .bind(agent_id)
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(sealed_record_from_row).transpose()
    }

    async fn insert_trusted_endpoint(
        &self,
        tenant: &str,
        endpoint: &TrustedEndpoint,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO trusted_endpoints (id, tenant_id, url, methods, created_at) VALUES (?, ?, ?, ?, ?)")
            .bind(endpoint.id.to_string())
            .bind(tenant)
            .bind(&endpoint.url)
            .bind(to_json(&endpoint.methods)?)
            .bind(endpoint.created_at.micros())
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn list_trusted_endpoints(
        &self,
        tenant: &str,
    ) -> Result<Vec<TrustedEndpoint>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, url, methods, created_at FROM trusted_endpoints WHERE tenant_id = ? ORDER BY created_at, id",
        )
        .bind(tenant)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                let methods: String = row.try_get("methods")?;
                Ok(TrustedEndpoint {
                    id: parse_uuid(&row.try_get::<String, _>("id")?)?,
                    url: row.try_get("url")?,
                    methods: serde_json::from_str(&methods)
                        .map_err(|error| StoreError::Corrupt(error.to_string()))?,
                    created_at: micros_to_timestamp(row.try_get("created_at")?)?,
                })
            })
            .collect()
    }

    async fn delete_trusted_endpoint(&self, tenant: &str, id: Uuid) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM trusted_endpoints WHERE tenant_id = ? AND id = ?")
            .bind(tenant)
            .bind(id.to_string())
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn insert_evaluation(
        &self,
        tenant: &str,
        evaluation: &StoredEvaluation,
        payload: &serde_json::Value,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO evaluations (id, tenant_id, run_id, agent_id, outcome, created_at, payload, result)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(evaluation.id.to_string())
        .bind(tenant)
        .bind(&evaluation.run_id)
        .bind(&evaluation.agent_id)
        .bind(evaluation.outcome.as_str())
        .bind(evaluation.created_at.micros())
        .bind(payload.to_string())
        .bind(to_json(evaluation)?)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn get_evaluation(
        &self,
        tenant: &str,
        id: Uuid,
    ) -> Result<Option<StoredEvaluation>, StoreError> {
        let row = sqlx::query("SELECT result FROM evaluations WHERE tenant_id = ? AND id = ?")
            .bind(tenant)
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await?;
        Ok(
            evaluations_from(row.iter().map(|row| row.try_get::<String, _>("result")), 1)?
                .0
                .pop(),
        )
    }

    async fn list_evaluations(
        &self,
        tenant: &str,
        query: &EvaluationQuery,
    ) -> Result<(Vec<StoredEvaluation>, bool), StoreError> {
        let mut builder =
            QueryBuilder::<Sqlite>::new("SELECT result FROM evaluations WHERE tenant_id = ");
        builder.push_bind(tenant);
        if let Some(run) = &query.run_id {
            builder.push(" AND run_id = ").push_bind(run.as_str());
        }
        if let Some(outcome) = query.outcome {
            builder.push(" AND outcome = ").push_bind(outcome.as_str());
        }
        if let Some(before) = query.before {
            builder.push(" AND id < ").push_bind(before.to_string());
        }
        builder
            .push(" ORDER BY id DESC LIMIT ")
            .push_bind(query.limit + 1);
        let rows = builder.build().fetch_all(&self.reader).await?;
        evaluations_from(
            rows.iter().map(|row| row.try_get::<String, _>("result")),
            query.limit,
        )
    }

    async fn due_for_expiry(
        &self,
        ttl_cutoff: Timestamp,
        now: Timestamp,
        limit: i64,
    ) -> Result<Vec<(String, Uuid)>, StoreError> {
        let rows = sqlx::query(
            "SELECT tenant_id, id FROM packets WHERE status NOT IN ('completed', 'expired') AND created_at < ?
             UNION
             SELECT tenant_id, id FROM packets WHERE status = 'awaiting_human' AND hitl_deadline <= ?
             LIMIT ?",
        )
        .bind(ttl_cutoff.micros())
        .bind(now.micros())
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("tenant_id")?,
                    parse_uuid(&row.try_get::<String, _>("id")?)?,
                ))
            })
            .collect()
    }
}

/// Revokes a key if it is the tenant's and live; tells which of the three cases applied.
async fn revoke_in(
    tx: &mut Transaction<'_, Sqlite>,
    tenant: &str,
    id: Uuid,
) -> Result<KeyChange, StoreError> {
    let done = sqlx::query("UPDATE api_keys SET revoked = 1, revoked_at = ? WHERE tenant_id = ? AND id = ? AND revoked = 0")
        .bind(Timestamp::now().micros())
        .bind(tenant)
        .bind(id.to_string())
        .execute(&mut **tx)
        .await?;
    if done.rows_affected() == 1 {
        return Ok(KeyChange::Done);
    }
    let exists = sqlx::query("SELECT 1 FROM api_keys WHERE tenant_id = ? AND id = ?")
        .bind(tenant)
        .bind(id.to_string())
        .fetch_optional(&mut **tx)
        .await?;
    Ok(if exists.is_some() {
        KeyChange::AlreadyRevoked
    } else {
        KeyChange::NotFound
    })
}
