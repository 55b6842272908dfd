//! PostgreSQL store: JSONB documents beside indexed columns, a connection pool, and conditional updates
//! so that several HandoffRail instances can share one database.

use super::{
    insert_chunks, not_inserted, sealed_record, unique_violation, Backend, KeyChange, Store,
    StoreError, StoreOptions, StoredPacket,
};
use crate::auth::limits::{RateCounts, RateHit, TENANT_HOUR_SCOPE};
use crate::auth::tenants::{Tenant, TenantWrite};
use crate::auth::{ApiKey, NewApiKey, Role, Tier};
use crate::evaluations::{EvaluationQuery, StoredEvaluation};
use crate::packets::history::{AuditQuery, NewEvent, PacketEvent};
use crate::packets::listing::{PacketPage, PacketQuery, SearchQuery};
use crate::packets::model::Packet;
use crate::packets::schemas::Schema;
use crate::packets::stats::{AgentCount, PacketStats, PoolFigures, SystemFigures};
use crate::records::{RecordQuery, RecordSummary, Seal, SealedRecord};
use crate::rules::TrustedEndpoint;
use crate::timestamp::Timestamp;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::types::Json;
use sqlx::{Postgres, QueryBuilder, Row, Transaction};
use std::str::FromStr;
use std::sync::LazyLock;
use std::time::Duration;
use uuid::Uuid;

pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    pub async fn open(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        let connect = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            // Short: while the database is down each request would wait this long (the health probe then
            // refuses requests at once until it answers again).
            .acquire_timeout(Duration::from_secs(3))
            .connect_with(connect)
            .await?;
        sqlx::migrate!("migrations/postgres").run(&pool).await?;
        Ok(Self { pool })
    }
}

fn key_from_row(row: &PgRow) -> Result<ApiKey, StoreError> {
    let role: String = row.try_get("role")?;
    let tier: String = row.try_get("tier")?;
    Ok(ApiKey {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        key_prefix: row.try_get("key_prefix")?,
        tenant_id: row.try_get("tenant_id")?,
        role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("role {role}")))?,
        tier: Tier::parse(&tier).ok_or_else(|| StoreError::Corrupt(format!("tier {tier}")))?,
        revoked: row.try_get("revoked")?,
        created_at: Timestamp::from_datetime(row.try_get::<DateTime<Utc>, _>("created_at")?),
        system: row.try_get("system")?,
    })
}

fn sealed_record_from_row(row: &PgRow) -> Result<SealedRecord, StoreError> {
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

fn packet_from_row(row: &PgRow) -> Result<Packet, StoreError> {
    Ok(row.try_get::<Json<Packet>, _>("doc")?.0)
}

async fn insert_key(
    tx: &mut Transaction<'_, Postgres>,
    key: &NewApiKey,
) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "INSERT INTO api_keys (id, name, key_hash, key_prefix, tenant_id, role, tier, revoked, rotated_from, created_at, system)
         VALUES ($1, $2, $3, $4, $5, $6, $7, FALSE, $8, $9, $10) ON CONFLICT (key_hash) DO NOTHING",
    )
    .bind(key.key.id)
    .bind(&key.key.name)
    .bind(&key.key_hash)
    .bind(&key.key.key_prefix)
    .bind(&key.key.tenant_id)
    .bind(key.key.role.as_str())
    .bind(key.key.tier.as_str())
    .bind(key.rotated_from)
    .bind(key.key.created_at.as_datetime())
    .bind(key.key.system)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

async fn mark_bootstrapped(
    tx: &mut Transaction<'_, Postgres>,
    key: &NewApiKey,
) -> Result<u64, StoreError> {
    let done = sqlx::query("INSERT INTO bootstrap (id, key_id, created_at) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING")
        .bind(key.key.id)
        .bind(key.key.created_at.as_datetime())
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected())
}

/// History events as parallel arrays, so a packet write and its events are one statement (one round trip,
/// atomic without an explicit transaction).
struct EventColumns<'a> {
    ids: Vec<Uuid>,
    packet_ids: Vec<Uuid>,
    kinds: Vec<&'a str>,
    actors: Vec<&'a str>,
    details: Vec<Json<&'a serde_json::Value>>,
    times: Vec<DateTime<Utc>>,
}

impl<'a> EventColumns<'a> {
    fn of(events: &'a [NewEvent]) -> Self {
        Self {
            ids: events.iter().map(|event| event.id).collect(),
            packet_ids: events.iter().map(|event| event.packet_id).collect(),
            kinds: events
                .iter()
                .map(|event| event.event_type.as_str())
                .collect(),
            actors: events.iter().map(|event| event.actor.as_str()).collect(),
            details: events.iter().map(|event| Json(&event.details)).collect(),
            times: events
                .iter()
                .map(|event| event.timestamp.as_datetime())
                .collect(),
        }
    }
}

impl<'a> EventColumns<'a> {
    /// Binds the six arrays, in the order `insert_events_from` numbers them.
    fn bind_to(self, query: PgQuery<'a>) -> PgQuery<'a> {
        query
            .bind(self.ids)
            .bind(self.packet_ids)
            .bind(self.kinds)
            .bind(self.actors)
            .bind(self.details)
            .bind(self.times)
    }
}

type PgQuery<'a> = sqlx::query::Query<'a, Postgres, sqlx::postgres::PgArguments>;

/// Inserts the events for each row of the CTE `written`, keeping their order (it decides `seq`).
/// Parameters `$1` (tenant) and `$N..$N+5` (the arrays) are bound by the caller.
fn insert_events_from(written: &str, first: usize) -> String {
    format!(
        "INSERT INTO packet_events (id, packet_id, tenant_id, event_type, actor, details, created_at)
         SELECT e.id, e.packet_id, $1, e.event_type, e.actor, e.details, e.created_at
         FROM {written}, UNNEST(${a}::uuid[], ${b}::uuid[], ${c}::text[], ${d}::text[], ${e}::jsonb[], ${f}::timestamptz[])
              WITH ORDINALITY AS e(id, packet_id, event_type, actor, details, created_at, n)
         ORDER BY e.n",
        a = first,
        b = first + 1,
        c = first + 2,
        d = first + 3,
        e = first + 4,
        f = first + 5,
    )
}

/// Appends the WHERE clause shared by a listing's page query and its count.
fn push_filters<'q>(
    builder: &mut QueryBuilder<'q, Postgres>,
    tenant: &'q str,
    query: &'q PacketQuery,
) {
    builder.push(" WHERE tenant_id = ").push_bind(tenant);
    if !query.statuses.is_empty() {
        builder
            .push(" AND status = ANY(")
            .push_bind(&query.statuses)
            .push(")");
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
    if !query.tags.is_empty() {
        builder.push(" AND tags @> ").push_bind(&query.tags);
    }
    if let Some(after) = query.created_after {
        builder
            .push(" AND created_at >= ")
            .push_bind(after.as_datetime());
    }
    if let Some(before) = query.created_before {
        builder
            .push(" AND created_at <= ")
            .push_bind(before.as_datetime());
    }
    if let Some(cursor) = &query.cursor {
        builder
            .push(" AND (created_at, id) < (")
            .push_bind(cursor.created_at.as_datetime())
            .push(", ")
            .push_bind(cursor.id)
            .push(")");
    }
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn bootstrap_admin_key(&self, key: &NewApiKey) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        if mark_bootstrapped(&mut tx, key).await? == 0 {
            return Ok(false);
        }
        insert_key(&mut tx, key).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn seed_api_key(&self, key: &NewApiKey) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let inserted = insert_key(&mut tx, key).await? == 1;
        mark_bootstrapped(&mut tx, key).await?;
        tx.commit().await?;
        Ok(inserted)
    }

    async fn insert_api_key(&self, key: &NewApiKey) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        insert_key(&mut tx, key).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn find_api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKey>, StoreError> {
        let row = sqlx::query("SELECT * FROM api_keys WHERE key_hash = $1")
            .bind(key_hash)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(key_from_row).transpose()
    }

    async fn list_api_keys(&self, tenant: &str) -> Result<Vec<ApiKey>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM api_keys WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC",
        )
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(key_from_row).collect()
    }

    async fn get_api_key(&self, tenant: &str, id: Uuid) -> Result<Option<ApiKey>, StoreError> {
        let row = sqlx::query("SELECT * FROM api_keys WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(key_from_row).transpose()
    }

    async fn revoke_api_key(&self, tenant: &str, id: Uuid) -> Result<KeyChange, StoreError> {
        let mut tx = self.pool.begin().await?;
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
        let mut tx = self.pool.begin().await?;
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
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&tenant.id)
        .bind(&tenant.name)
        .bind(&tenant.tier)
        .bind(tenant.handoffs_per_day)
        .bind(tenant.max_api_keys)
        .bind(tenant.created_at.as_datetime())
        .bind(tenant.updated_at.as_datetime())
        .execute(&self.pool)
        .await;
        Ok(unique_violation(inserted)?.map_or_else(|refusal| refusal, |_| TenantWrite::Done))
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM tenants WHERE deleted_at IS NULL ORDER BY created_at DESC, id DESC",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(tenant_from_row).collect()
    }

    async fn get_tenant(&self, id: &str) -> Result<Option<Tenant>, StoreError> {
        let row = sqlx::query("SELECT * FROM tenants WHERE id = $1 AND deleted_at IS NULL")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(tenant_from_row).transpose()
    }

    async fn update_tenant(&self, tenant: &Tenant) -> Result<TenantWrite, StoreError> {
        let updated = sqlx::query(
            "UPDATE tenants SET name = $1, tier = $2, handoffs_per_day = $3, max_api_keys = $4, updated_at = $5
             WHERE id = $6 AND deleted_at IS NULL",
        )
        .bind(&tenant.name)
        .bind(&tenant.tier)
        .bind(tenant.handoffs_per_day)
        .bind(tenant.max_api_keys)
        .bind(tenant.updated_at.as_datetime())
        .bind(&tenant.id)
        .execute(&self.pool)
        .await;
        Ok(match unique_violation(updated)? {
            Ok(done) if done.rows_affected() == 0 => TenantWrite::NotFound,
            Ok(_) => TenantWrite::Done,
            Err(refusal) => refusal,
        })
    }

    async fn delete_tenant(&self, id: &str, at: Timestamp) -> Result<TenantWrite, StoreError> {
        let deleted = sqlx::query(
            "UPDATE tenants SET deleted_at = $1, updated_at = $2 WHERE id = $3 AND deleted_at IS NULL",
        )
        .bind(at.as_datetime())
        .bind(at.as_datetime())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(if deleted.rows_affected() == 0 {
            TenantWrite::NotFound
        } else {
            TenantWrite::Done
        })
    }

    async fn count_request(&self, hit: &RateHit) -> Result<RateCounts, StoreError> {
        // One statement: both windows upserted in scope order (so two requests never lock the same rows in
        // opposite orders), and the earlier seconds of the minute summed from the snapshot before it.
        let row = sqlx::query(
            "WITH counted AS (
                 INSERT INTO rate_windows AS w (scope, window_start, hits, expires_at)
                 SELECT scope, window_start, 1, expires_at
                 FROM (VALUES ($1::text, $2::bigint, $2::bigint + 60),
                              ($3::text, $4::bigint, $4::bigint + 3600)) AS v (scope, window_start, expires_at)
                 WHERE scope IS NOT NULL ORDER BY scope
                 ON CONFLICT (scope, window_start) DO UPDATE SET hits = w.hits + 1
                 RETURNING scope, hits)
             SELECT (SELECT hits FROM counted WHERE scope = $1) AS minute,
                    (SELECT hits FROM counted WHERE scope = $3) AS hour,
                    earlier.hits AS earlier, earlier.oldest AS oldest
             FROM (SELECT COALESCE(SUM(hits), 0)::bigint AS hits, MIN(window_start) AS oldest
                   FROM rate_windows
                   WHERE scope = $1 AND window_start > $2 - 60 AND window_start < $2 AND hits > 0) AS earlier",
        )
        .bind(&hit.minute)
        .bind(hit.second)
        .bind(&hit.hour)
        .bind(hit.hour_start)
        .fetch_one(&self.pool)
        .await?;
        let current: Option<i64> = row.try_get("minute")?;
        let earlier: i64 = row.try_get("earlier")?;
        let hour: Option<i64> = row.try_get("hour")?;
        Ok(RateCounts {
            minute: current.map_or(0, |current| (current + earlier).max(0) as u64),
            oldest_second: row
                .try_get::<Option<i64>, _>("oldest")?
                .unwrap_or(hit.second),
            hour: hour.unwrap_or(0).max(0) as u64,
        })
    }

    async fn refund_request(&self, minute_scope: &str, second: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE rate_windows SET hits = hits - 1 WHERE scope = $1 AND window_start = $2 AND hits > 0",
        )
        .bind(minute_scope)
        .bind(second)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn take_daily_slot(&self, tenant: &str, day: i64, cap: u64) -> Result<bool, StoreError> {
        let used: Option<i64> = sqlx::query_scalar(
            "INSERT INTO daily_creates AS d (tenant_id, day, used) VALUES ($1, $2, 1)
             ON CONFLICT (tenant_id, day) DO UPDATE SET used = d.used + 1 WHERE d.used < $3
             RETURNING used",
        )
        .bind(tenant)
        .bind(day)
        .bind(i64::try_from(cap).unwrap_or(i64::MAX))
        .fetch_optional(&self.pool)
        .await?;
        Ok(used.is_some())
    }

    async fn prune_limits(&self, second: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM rate_windows WHERE expires_at <= $1")
            .bind(second)
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM daily_creates WHERE day < $1")
            .bind(second.div_euclid(86_400) - 1)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn insert_schema(&self, schema: &Schema) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO schemas (id, tenant_id, name, version, json_schema, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(schema.id)
        .bind(&schema.tenant_id)
        .bind(&schema.name)
        .bind(schema.version)
        .bind(schema.json_schema.to_string())
        .bind(schema.created_at.as_datetime())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_schema(&self, tenant: &str, id: Uuid) -> Result<Option<Schema>, StoreError> {
        let row = sqlx::query("SELECT * FROM schemas WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .fetch_optional(&self.pool)
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
            "SELECT * FROM schemas WHERE tenant_id = $1
             ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3",
        )
        .bind(tenant)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool);
        let count = sqlx::query_scalar("SELECT count(*) FROM schemas WHERE tenant_id = $1")
            .bind(tenant)
            .fetch_one(&self.pool);
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
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "WITH written AS (
                 INSERT INTO packets (id, tenant_id, status, revision, source_agent_id, target_agent_id, priority,
                                      tags, parent_packet_id, created_at, updated_at, doc, hitl_deadline)
                 VALUES ($2, $1, $3, 0, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id
             ) {}",
                insert_events_from("written", 13)
            )
        });
        let columns = EventColumns::of(events);
        let query = sqlx::query(SQL.as_str())
            .bind(tenant)
            .bind(packet.id)
            .bind(packet.status.as_str())
            .bind(&packet.metadata.source_agent.id)
            .bind(&packet.metadata.target_agent.id)
            .bind(packet.metadata.priority.as_str())
            .bind(&packet.metadata.tags)
            .bind(packet.parent_packet_id)
            .bind(packet.created_at.as_datetime())
            .bind(packet.updated_at.as_datetime())
            .bind(Json(packet))
            .bind(hitl_deadline.map(|at| at.as_datetime()));
        columns.bind_to(query).execute(&self.pool).await?;
        Ok(())
    }

    async fn get_packet(&self, tenant: &str, id: Uuid) -> Result<Option<StoredPacket>, StoreError> {
        let row = sqlx::query(
            "SELECT doc, revision, hitl_deadline FROM packets WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => Ok(Some(StoredPacket {
                packet: packet_from_row(&row)?,
                revision: row.try_get("revision")?,
                hitl_deadline: row
                    .try_get::<Option<DateTime<Utc>>, _>("hitl_deadline")?
                    .map(Timestamp::from_datetime),
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
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "WITH written AS (
                 UPDATE packets SET status = $2, revision = revision + 1, target_agent_id = $3, updated_at = $4,
                                    doc = $5, hitl_deadline = $8
                 WHERE tenant_id = $1 AND id = $6 AND revision = $7 RETURNING id
             ), appended AS ({})
             SELECT COUNT(*) FROM written",
                insert_events_from("written", 9)
            )
        });
        let columns = EventColumns::of(events);
        let query = sqlx::query(SQL.as_str())
            .bind(tenant)
            .bind(packet.status.as_str())
            .bind(&packet.metadata.target_agent.id)
            .bind(packet.updated_at.as_datetime())
            .bind(Json(packet))
            .bind(packet.id)
            .bind(expected_revision)
            .bind(hitl_deadline.map(|at| at.as_datetime()));
        let written: i64 = columns
            .bind_to(query)
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        Ok(written == 1)
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
            page.build().fetch_all(&self.pool),
            count.build_query_scalar::<i64>().fetch_one(&self.pool)
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
        // plainto_tsquery reads the text as plain words: punctuation and operators never make a syntax error.
        let filters = "tenant_id = $1 AND search @@ plainto_tsquery('english', $2)
                       AND ($3::text IS NULL OR status = $3) AND ($4::text IS NULL OR priority = $4)";
        let page_sql = format!(
            "SELECT doc FROM packets WHERE {filters}
             ORDER BY lower(doc #>> '{{context,summary}}') = lower($2) DESC,
                      ts_rank_cd(search, plainto_tsquery('english', $2)) DESC, created_at DESC, id DESC
             LIMIT $5 OFFSET $6"
        );
        let count_sql = format!("SELECT count(*) FROM packets WHERE {filters}");
        let page = sqlx::query(&page_sql)
            .bind(tenant)
            .bind(&query.text)
            .bind(&query.status)
            .bind(&query.priority)
            .bind(query.limit)
            .bind(query.offset)
            .fetch_all(&self.pool);
        let count = sqlx::query_scalar(&count_sql)
            .bind(tenant)
            .bind(&query.text)
            .bind(&query.status)
            .bind(&query.priority)
            .fetch_one(&self.pool);
        let (rows, total) = tokio::try_join!(page, count)?;
        single_page(&rows, total)
    }

    async fn packet_stats(
        &self,
        tenant: Option<&str>,
        since: Timestamp,
    ) -> Result<PacketStats, StoreError> {
        let by_status = sqlx::query(
            "SELECT status, count(*) AS n FROM packets WHERE ($1::text IS NULL OR tenant_id = $1) GROUP BY status",
        )
        .bind(tenant)
        .fetch_all(&self.pool);
        let recent = sqlx::query_scalar(
            "SELECT count(*) FROM packets WHERE ($1::text IS NULL OR tenant_id = $1) AND created_at >= $2",
        )
        .bind(tenant)
        .bind(since.as_datetime())
        .fetch_one(&self.pool);
        let claim_time = sqlx::query_scalar(
            "SELECT avg(extract(epoch FROM ((doc #>> '{metadata,claimed_at}')::timestamptz - created_at)))::float8
             FROM packets WHERE ($1::text IS NULL OR tenant_id = $1)
               AND status IN ('claimed', 'in_progress', 'completed')
               AND doc #>> '{metadata,claimed_at}' IS NOT NULL",
        )
        .bind(tenant)
        .fetch_one(&self.pool);
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
            "SELECT avg(extract(epoch FROM (updated_at - (doc #>> '{metadata,claimed_at}')::timestamptz)))::float8
             FROM packets WHERE status = 'completed' AND doc #>> '{metadata,claimed_at}' IS NOT NULL",
        )
        .fetch_one(&self.pool);
        let active_agents = sqlx::query_scalar(
            "SELECT count(DISTINCT target_agent_id) FROM packets
             WHERE status IN ('claimed', 'in_progress', 'awaiting_human')",
        )
        .fetch_one(&self.pool);
        let agents_seen = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT source_agent_id FROM packets UNION SELECT target_agent_id FROM packets) AS seen",
        )
        .fetch_one(&self.pool);
        let top_agents = sqlx::query(
            "SELECT agent_id, count(*) AS n FROM (SELECT source_agent_id AS agent_id FROM packets
                                                  UNION ALL SELECT target_agent_id FROM packets) AS named
             GROUP BY agent_id ORDER BY n DESC, agent_id LIMIT 5",
        )
        .fetch_all(&self.pool);
        let oldest_waiting =
            sqlx::query_scalar("SELECT min(created_at) FROM packets WHERE status = 'created'")
                .fetch_one(&self.pool);
        let active_keys = sqlx::query_scalar("SELECT count(*) FROM api_keys WHERE NOT revoked")
            .fetch_one(&self.pool);
        let size =
            sqlx::query_scalar("SELECT pg_database_size(current_database())").fetch_one(&self.pool);
        let hour_counts = sqlx::query(
            "SELECT substr(scope, length($1) + 1) AS tenant, hits FROM rate_windows
             WHERE starts_with(scope, $1) AND window_start = $2",
        )
        .bind(TENANT_HOUR_SCOPE)
        .bind(hour_start)
        .fetch_all(&self.pool);
        let (complete, active_agents, total_agents_seen, top, oldest, active_api_keys, size, hours) =
            tokio::try_join!(
                complete_time,
                active_agents,
                agents_seen,
                top_agents,
                oldest_waiting,
                active_keys,
                size,
                hour_counts
            )?;
        let oldest: Option<DateTime<Utc>> = oldest;
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
            oldest_waiting_created_at: oldest.map(Timestamp::from_datetime),
            active_api_keys,
            db_size_bytes: Some(size),
            connection_pool: Some(PoolFigures {
                size: self.pool.size(),
                idle: u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
                max: self.pool.options().get_max_connections(),
            }),
            requests_this_hour_by_tenant: hours
                .iter()
                .map(|row| Ok((row.try_get("tenant")?, row.try_get("hits")?)))
                .collect::<Result<_, StoreError>>()?,
        })
    }

    async fn list_awaiting(
        &self,
        tenant: &str,
        limit: i64,
        offset: i64,
    ) -> Result<PacketPage, StoreError> {
        let rows = sqlx::query(
            "SELECT doc FROM packets WHERE tenant_id = $1 AND status = 'awaiting_human'
             ORDER BY created_at ASC, id ASC LIMIT $2 OFFSET $3",
        )
        .bind(tenant)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        let total: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM packets WHERE tenant_id = $1 AND status = 'awaiting_human'",
        )
        .bind(tenant)
        .fetch_one(&self.pool)
        .await?;
        single_page(&rows, total)
    }

    async fn packet_history(&self, tenant: &str, id: Uuid) -> Result<Vec<PacketEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, packet_id, event_type, actor, details, created_at FROM packet_events
             WHERE tenant_id = $1 AND packet_id = $2 ORDER BY seq",
        )
        .bind(tenant)
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event_from_row).collect()
    }

    async fn list_audit(
        &self,
        tenant: &str,
        query: &AuditQuery,
    ) -> Result<(Vec<PacketEvent>, i64), StoreError> {
        let filters = "tenant_id = $1 AND ($2::text IS NULL OR actor = $2)
                       AND ($3::text IS NULL OR event_type = $3) AND ($4::uuid IS NULL OR packet_id = $4)
                       AND ($5::timestamptz IS NULL OR created_at >= $5)
                       AND ($6::timestamptz IS NULL OR created_at <= $6)";
        let after = query.created_after.map(|at| at.as_datetime());
        let before = query.created_before.map(|at| at.as_datetime());
        let page_sql = format!(
            "SELECT id, packet_id, event_type, actor, details, created_at FROM packet_events
             WHERE {filters} ORDER BY created_at DESC, seq DESC LIMIT $7 OFFSET $8"
        );
        let count_sql = format!("SELECT count(*) FROM packet_events WHERE {filters}");
        let page = sqlx::query(&page_sql)
            .bind(tenant)
            .bind(&query.actor)
            .bind(&query.action)
            .bind(query.packet_id)
            .bind(after)
            .bind(before)
            .bind(query.limit)
            .bind(query.offset)
            .fetch_all(&self.pool);
        let count = sqlx::query_scalar(&count_sql)
            .bind(tenant)
            .bind(&query.actor)
            .bind(&query.action)
            .bind(query.packet_id)
            .bind(after)
            .bind(before)
            .fetch_one(&self.pool);
        let (rows, total) = tokio::try_join!(page, count)?;
        let events = rows.iter().map(event_from_row).collect::<Result<_, _>>()?;
        Ok((events, total))
    }

    async fn insert_records(&self, records: &[SealedRecord]) -> Result<Vec<Uuid>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut inserted = Vec::with_capacity(records.len());
        for chunk in insert_chunks(records) {
            let columns = RecordColumns::of(chunk);
            inserted.extend(
                sqlx::query_scalar::<_, Uuid>(
                    "INSERT INTO records (id, tenant_id, run_id, agent_id, action, method, host, status, provenance,
                                          started_at, sha256, key_id, signature, doc, request_body, response_body)
                     SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                                          $7::text[], $8::int4[], $9::text[], $10::timestamptz[], $11::text[],
                                          $12::text[], $13::text[], $14::text[], $15::bytea[], $16::bytea[])
                     ON CONFLICT (id) DO NOTHING
                     RETURNING id",
                )
                .bind(columns.id)
                .bind(columns.tenant_id)
                .bind(columns.run_id)
                .bind(columns.agent_id)
                .bind(columns.action)
                .bind(columns.method)
                .bind(columns.host)
                .bind(columns.status)
                .bind(columns.provenance)
                .bind(columns.started_at)
                .bind(columns.sha256)
                .bind(columns.key_id)
                .bind(columns.signature)
                .bind(columns.doc)
                .bind(columns.request_body)
                .bind(columns.response_body)
                .fetch_all(&mut *tx)
                .await?,
            );
        }
        tx.commit().await?;
        Ok(not_inserted(records, inserted))
    }

    async fn get_record(&self, tenant: &str, id: Uuid) -> Result<Option<SealedRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT sha256, key_id, signature, doc, request_body, response_body FROM records
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(sealed_record_from_row).transpose()
    }

    async fn list_records(
        &self,
        tenant: &str,
        query: &RecordQuery,
    ) -> Result<(Vec<RecordSummary>, bool), StoreError> {
        let mut builder =
            QueryBuilder::<Postgres>::new("SELECT doc FROM records WHERE tenant_id = ");
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
            builder.push(" AND status = ").push_bind(i32::from(status));
        }
        if let Some(cursor) = &query.cursor {
            builder
                .push(" AND (started_at, id) < (")
                .push_bind(cursor.started_at.as_datetime())
                .push(", ")
                .push_bind(cursor.id)
                .push(")");
        }
        builder
            .push(" ORDER BY started_at DESC, id DESC LIMIT ")
            .push_bind(query.limit + 1);
        let rows = builder.build().fetch_all(&self.pool).await?;
        super::record_summaries(
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
             WHERE tenant_id = $1 AND run_id = $2 AND action = $3 AND ($4::text IS NULL OR agent_id = $4)
             ORDER BY started_at DESC, id DESC LIMIT 1",
        )
        .bind(tenant)
        .bind(run_id)
        .bind(action)
        .bind(agent_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(sealed_record_from_row).transpose()
    }

    async fn insert_trusted_endpoint(
        &self,
        tenant: &str,
        endpoint: &TrustedEndpoint,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO trusted_endpoints (id, tenant_id, url, methods, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(endpoint.id)
            .bind(tenant)
            .bind(&endpoint.url)
            .bind(&endpoint.methods)
            .bind(endpoint.created_at.as_datetime())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn list_trusted_endpoints(
        &self,
        tenant: &str,
    ) -> Result<Vec<TrustedEndpoint>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, url, methods, created_at FROM trusted_endpoints WHERE tenant_id = $1 ORDER BY created_at, id",
        )
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(TrustedEndpoint {
                    id: row.try_get("id")?,
                    url: row.try_get("url")?,
                    methods: row.try_get("methods")?,
                    created_at: Timestamp::from_datetime(
                        row.try_get::<DateTime<Utc>, _>("created_at")?,
                    ),
                })
            })
            .collect()
    }

    async fn delete_trusted_endpoint(&self, tenant: &str, id: Uuid) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM trusted_endpoints WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .execute(&self.pool)
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
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(evaluation.id)
        .bind(tenant)
        .bind(&evaluation.run_id)
        .bind(&evaluation.agent_id)
        .bind(evaluation.outcome.as_str())
        .bind(evaluation.created_at.as_datetime())
        .bind(payload.to_string())
        .bind(serde_json::to_string(evaluation).map_err(|error| StoreError::Corrupt(error.to_string()))?)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_evaluation(
        &self,
        tenant: &str,
        id: Uuid,
    ) -> Result<Option<StoredEvaluation>, StoreError> {
        let row = sqlx::query("SELECT result FROM evaluations WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(
            super::evaluations_from(row.iter().map(|row| row.try_get::<String, _>("result")), 1)?
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
            QueryBuilder::<Postgres>::new("SELECT result FROM evaluations WHERE tenant_id = ");
        builder.push_bind(tenant);
        if let Some(run) = &query.run_id {
            builder.push(" AND run_id = ").push_bind(run.as_str());
        }
        if let Some(outcome) = query.outcome {
            builder.push(" AND outcome = ").push_bind(outcome.as_str());
        }
        if let Some(before) = query.before {
            builder.push(" AND id < ").push_bind(before);
        }
        builder
            .push(" ORDER BY id DESC LIMIT ")
            .push_bind(query.limit + 1);
        let rows = builder.build().fetch_all(&self.pool).await?;
        super::evaluations_from(
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
            "SELECT tenant_id, id FROM packets WHERE status NOT IN ('completed', 'expired') AND created_at < $1
             UNION
             SELECT tenant_id, id FROM packets WHERE status = 'awaiting_human' AND hitl_deadline <= $2
             LIMIT $3",
        )
        .bind(ttl_cutoff.as_datetime())
        .bind(now.as_datetime())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("tenant_id")?, row.try_get("id")?)))
            .collect()
    }
}

/// Revokes a key if it is the tenant's and live; tells which of the three cases applied.
async fn revoke_in(
    tx: &mut Transaction<'_, Postgres>,
    tenant: &str,
    id: Uuid,
) -> Result<KeyChange, StoreError> {
    let done = sqlx::query(
        "UPDATE api_keys SET revoked = TRUE, revoked_at = now() WHERE tenant_id = $1 AND id = $2 AND NOT revoked",
    )
    .bind(tenant)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() == 1 {
        return Ok(KeyChange::Done);
    }
    let exists = sqlx::query("SELECT 1 FROM api_keys WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(if exists.is_some() {
        KeyChange::AlreadyRevoked
    } else {
        KeyChange::NotFound
    })
}

/// A run of records column by column, for one `INSERT … SELECT * FROM UNNEST(…)`.
struct RecordColumns<'a> {
    id: Vec<Uuid>,
    tenant_id: Vec<&'a str>,
    run_id: Vec<Option<&'a str>>,
    agent_id: Vec<Option<&'a str>>,
    action: Vec<Option<&'a str>>,
    method: Vec<&'a str>,
    host: Vec<String>,
    status: Vec<Option<i32>>,
    provenance: Vec<&'static str>,
    started_at: Vec<chrono::DateTime<chrono::Utc>>,
    sha256: Vec<&'a str>,
    key_id: Vec<&'a str>,
    signature: Vec<&'a str>,
    doc: Vec<String>,
    request_body: Vec<&'a [u8]>,
    response_body: Vec<&'a [u8]>,
}

impl<'a> RecordColumns<'a> {
    fn of(records: &'a [SealedRecord]) -> Self {
        let mut columns = RecordColumns {
            id: Vec::with_capacity(records.len()),
            tenant_id: Vec::with_capacity(records.len()),
            run_id: Vec::with_capacity(records.len()),
            agent_id: Vec::with_capacity(records.len()),
            action: Vec::with_capacity(records.len()),
            method: Vec::with_capacity(records.len()),
            host: Vec::with_capacity(records.len()),
            status: Vec::with_capacity(records.len()),
            provenance: Vec::with_capacity(records.len()),
            started_at: Vec::with_capacity(records.len()),
            sha256: Vec::with_capacity(records.len()),
            key_id: Vec::with_capacity(records.len()),
            signature: Vec::with_capacity(records.len()),
            doc: Vec::with_capacity(records.len()),
            request_body: Vec::with_capacity(records.len()),
            response_body: Vec::with_capacity(records.len()),
        };
        for SealedRecord { record, seal } in records {
            columns.id.push(record.id);
            columns.tenant_id.push(&record.tenant_id);
            columns.run_id.push(record.run_id.as_deref());
            columns.agent_id.push(record.agent_id.as_deref());
            columns.action.push(record.action.as_deref());
            columns.method.push(&record.method);
            columns.host.push(record.host());
            columns.status.push(record.status.map(i32::from));
            columns.provenance.push(record.provenance.as_str());
            columns
                .started_at
                .push(record.timings.started_at.as_datetime());
            columns.sha256.push(&seal.sha256);
            columns.key_id.push(&seal.key_id);
            columns.signature.push(&seal.signature);
            columns.doc.push(record.document_without_bodies());
            columns.request_body.push(&record.request_body);
            columns.response_body.push(&record.response_body);
        }
        columns
    }
}

/// A page that is the whole answer (search and the human queue have no cursor).
fn single_page(rows: &[PgRow], total: i64) -> Result<PacketPage, StoreError> {
    let packets = rows.iter().map(packet_from_row).collect::<Result<_, _>>()?;
    Ok(PacketPage {
        packets,
        total,
        has_more: false,
    })
}

fn tenant_from_row(row: &PgRow) -> Result<Tenant, StoreError> {
    let at = |column: &str| -> Result<Timestamp, StoreError> {
        Ok(Timestamp::from_datetime(row.try_get(column)?))
    };
    Ok(Tenant {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        tier: row.try_get("tier")?,
        handoffs_per_day: row.try_get("handoffs_per_day")?,
        max_api_keys: row.try_get("max_api_keys")?,
        created_at: at("created_at")?,
        updated_at: at("updated_at")?,
        deleted_at: row
            .try_get::<Option<chrono::DateTime<chrono::Utc>>, _>("deleted_at")?
            .map(Timestamp::from_datetime),
    })
}

fn event_from_row(row: &PgRow) -> Result<PacketEvent, StoreError> {
    Ok(PacketEvent {
        id: row.try_get("id")?,
        packet_id: row.try_get("packet_id")?,
        event_type: row.try_get("event_type")?,
        actor: row.try_get("actor")?,
        details: row.try_get::<Json<serde_json::Value>, _>("details")?.0,
        timestamp: Timestamp::from_datetime(row.try_get::<DateTime<Utc>, _>("created_at")?),
    })
}

fn schema_from_row(row: &PgRow) -> Result<Schema, StoreError> {
    let document: String = row.try_get("json_schema")?;
    Ok(Schema {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        version: row.try_get("version")?,
        json_schema: serde_json::from_str(&document)
            .map_err(|error| StoreError::Corrupt(format!("schema document: {error}")))?,
        tenant_id: row.try_get("tenant_id")?,
        created_at: Timestamp::from_datetime(row.try_get("created_at")?),
    })
}
