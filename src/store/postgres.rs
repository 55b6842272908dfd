//! What only PostgreSQL does: the pool, packet writes and their history events in one statement, tsvector
//! search, record inserts by UNNEST, rate windows in a shared table, and pool figures.

use super::database::{Pools, SqlStore};
use super::evaluations::{evaluation_insert, INSERT_EVALUATION};
use super::packets::push_search_filters;
use super::packets::{Appended, Written};
use super::records::insert_chunks;
use super::statement::{bind_postgres, PgQuery, Statement};
use super::{Backend, StoreError, StoreOptions};
use crate::announce::Announcement;
use crate::auth::limits::{RateCounts, RateHit};
use crate::packets::history::NewEvent;
use crate::packets::listing::SearchQuery;
use crate::packets::stats::PoolFigures;
use crate::records::SealedRecord;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::types::Json;
use sqlx::Row;
use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;
use uuid::Uuid;

pub(crate) async fn open(url: &str, options: &StoreOptions) -> Result<SqlStore, StoreError> {
    let connect = PgConnectOptions::from_str(url)?;
    let pool = PgPoolOptions::new()
        .max_connections(options.max_connections.max(1))
        // Short: while the database is down each request would wait this long (the health probe then
        // refuses requests at once until it answers again).
        .acquire_timeout(Duration::from_secs(3))
        .connect_with(connect)
        .await?;
    sqlx::migrate!("migrations/postgres").run(&pool).await?;
    let mut store = SqlStore::new(Pools::Postgres(pool.clone()), options);
    store.live_channel = super::notifications::live_channel(&pool).await?;
    super::notifications::listen_for_live_events(
        pool,
        store.live_channel.clone(),
        store.live.clone(),
    );
    Ok(store)
}

/// Runs a packet insert or conditional update (`write`, ending in `RETURNING id`) and, for the row it wrote,
/// appends the packet's evaluation, history events and one webhook delivery per outbox event and matching active hook of
/// the tenant (taken for its first attempt, returned as a take returns it), as one statement: one round trip,
/// atomic without a transaction.
pub(crate) async fn write_packet(
    store: &SqlStore,
    pool: &PgPool,
    write: Statement<'_>,
    tenant: &str,
    appended: &Appended<'_>,
    announcement: &Announcement,
) -> Result<Written, StoreError> {
    let (written, params) = write.into_parts();
    let next = params.len() + 1;
    // The evaluation's parameters follow the write's and the eleven of this statement.
    let (evaluated, evaluation_params) = match appended.evaluation {
        Some(evaluation) => {
            let insert = Statement::after(
                Backend::Postgres,
                params.len() + 11,
                &format!("{INSERT_EVALUATION} FROM written"),
            );
            let (sql, params) = evaluation_insert(insert, tenant, evaluation)?.into_parts();
            (format!("evaluated AS ({sql}),"), params)
        }
        None => (String::new(), Vec::new()),
    };
    // The events are inserted once per row `written` returns, in their order (it decides `seq`).
    let sql = format!(
        "WITH written AS ({written}),
         appended AS (
             INSERT INTO packet_events (id, packet_id, tenant_id, event_type, actor, details, created_at)
             SELECT e.id, e.packet_id, ${t}, e.event_type, e.actor, e.details, e.created_at
             FROM written, UNNEST(${a}::uuid[], ${b}::uuid[], ${c}::text[], ${d}::text[], ${e}::jsonb[],
                                  ${f}::timestamptz[])
                  WITH ORDINALITY AS e(id, packet_id, event_type, actor, details, created_at, n)
             ORDER BY e.n),
         {evaluated}
         outbox AS ({outbox}),
         announced AS (
             SELECT pg_notify(${n}, l.notification) FROM written,
                    UNNEST(${l}::text[]) AS l(notification))
         SELECT (SELECT count(*) FROM written) AS written, (SELECT count(*) FROM announced) AS announced,
                outbox.*
         FROM (VALUES (1)) AS one (x) LEFT JOIN outbox ON true",
        t = next,
        a = next + 1,
        b = next + 2,
        c = next + 3,
        d = next + 4,
        e = next + 5,
        f = next + 6,
        l = next + 8,
        n = next + 9,
        outbox = super::announce::fan_out_sql(
            Backend::Postgres,
            &format!("${}", next + 7),
            &format!("${next}"),
            &format!("${}", next + 10),
            " AND EXISTS (SELECT 1 FROM written)"
        ),
    );
    let query = bind_postgres(sqlx::query(&sql), params).bind(tenant);
    let query = EventColumns::of(appended.events).bind_to(query);
    let query = bind_postgres(
        query,
        vec![super::announce::outbox_param(&announcement.outbox)?],
    );
    let rows = query
        .bind(
            announcement
                .live
                .iter()
                .map(super::notifications::notification)
                .collect::<Vec<_>>(),
        )
        .bind(store.live_channel.as_str())
        .bind(store.first_attempt_lease_until().as_datetime());
    let rows = bind_postgres(rows, evaluation_params)
        .fetch_all(pool)
        .await?;
    let rows: Vec<super::row::Row> = rows.into_iter().map(Into::into).collect();
    Ok(Written {
        rows: match rows.first() {
            Some(row) => u64::try_from(row.integer("written")?).unwrap_or(0),
            None => 0,
        },
        deliveries: super::announce::fresh_deliveries_in(&rows)?,
    })
}

/// History events as parallel arrays, for one `UNNEST`.
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

/// The page and count statements of a search over the packets' tsvector. `plainto_tsquery` reads the text
/// as plain words: punctuation and operators never make a syntax error.
pub(crate) fn search_statements<'q>(
    tenant: &'q str,
    query: &'q SearchQuery,
) -> (Statement<'q>, Statement<'q>) {
    let filtered = |select: &str| {
        let mut statement = Statement::new(Backend::Postgres, select);
        statement
            .push_bind(" FROM packets WHERE tenant_id = ?", tenant)
            .push_bind(" AND search @@ plainto_tsquery('english', ?)", &query.text);
        push_search_filters(&mut statement, "", query);
        statement
    };
    let mut page = filtered("SELECT doc");
    page.push_bind(
        " ORDER BY lower(doc #>> '{context,summary}') = lower(?) DESC",
        &query.text,
    )
    .push_bind(
        ", ts_rank_cd(search, plainto_tsquery('english', ?)) DESC, created_at DESC, id DESC",
        &query.text,
    )
    .push_limit_offset(&query.page);
    (page, filtered("SELECT count(*)"))
}

/// Appends `records` by `INSERT … SELECT * FROM UNNEST(…)` in one transaction, pushing the ids each
/// inserted.
pub(crate) async fn insert_records(
    pool: &PgPool,
    records: &[SealedRecord],
    inserted: &mut Vec<Uuid>,
) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
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
    Ok(())
}

/// A run of records column by column, for one `INSERT … SELECT * FROM UNNEST(…)`.
#[derive(Default)]
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
    started_at: Vec<DateTime<Utc>>,
    sha256: Vec<&'a str>,
    key_id: Vec<&'a str>,
    signature: Vec<&'a str>,
    doc: Vec<String>,
    request_body: Vec<&'a [u8]>,
    response_body: Vec<&'a [u8]>,
}

impl<'a> RecordColumns<'a> {
    fn of(records: &'a [SealedRecord]) -> Self {
        let mut columns = RecordColumns::default();
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

/// Counts one request in its rate windows. One statement: both windows upserted in scope order (so two
/// requests never lock the same rows in opposite orders), and the earlier seconds of the minute summed
/// from the snapshot before it.
pub(crate) async fn count_request(pool: &PgPool, hit: &RateHit) -> Result<RateCounts, StoreError> {
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
    .fetch_one(pool)
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

pub(crate) async fn refund_request(
    pool: &PgPool,
    minute_scope: &str,
    second: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE rate_windows SET hits = hits - 1 WHERE scope = $1 AND window_start = $2 AND hits > 0",
    )
    .bind(minute_scope)
    .bind(second)
    .execute(pool)
    .await?;
    Ok(())
}

pub(crate) async fn prune_rate_windows(pool: &PgPool, second: i64) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM rate_windows WHERE expires_at <= $1")
        .bind(second)
        .execute(pool)
        .await?;
    Ok(())
}

/// Requests per tenant in the hour window starting at `hour_start` (scopes `<prefix><tenant>`).
pub(crate) async fn hour_counts(
    pool: &PgPool,
    prefix: &str,
    hour_start: i64,
) -> Result<BTreeMap<String, i64>, StoreError> {
    let rows = sqlx::query(
        "SELECT substr(scope, length($1) + 1) AS tenant, hits FROM rate_windows
         WHERE starts_with(scope, $1) AND window_start = $2",
    )
    .bind(prefix)
    .bind(hour_start)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| Ok((row.try_get("tenant")?, row.try_get("hits")?)))
        .collect()
}

pub(crate) fn pool_figures(pool: &PgPool) -> PoolFigures {
    PoolFigures {
        size: pool.size(),
        idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
        max: pool.options().get_max_connections(),
    }
}
