//! What only SQLite does: opening the file (WAL, one writer, a pool of readers), packet writes in an
//! IMMEDIATE transaction, FTS5 search, and multi-row record inserts.

use super::database::{Pools, SqlStore};
use super::evaluations::{evaluation_insert, INSERT_EVALUATION};
use super::packets::{push_search_filters, Appended, Written};
use super::rate_windows::MemoryCounters;
use super::records::insert_chunks;
use super::row::parse_id;
use super::statement::{Param, Statement};
use super::{Backend, StoreError, StoreOptions};
use crate::packets::listing::SearchQuery;
use crate::records::SealedRecord;
use crate::webhooks::OutboxEvent;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{QueryBuilder, Sqlite};
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

pub(crate) async fn open(url: &str, options: &StoreOptions) -> Result<SqlStore, StoreError> {
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
    Ok(SqlStore::new(
        Pools::Sqlite {
            writer,
            reader,
            rate_windows: MemoryCounters::default(),
        },
        options,
    ))
}

/// A write transaction that takes the write lock (waiting up to the busy timeout) before its first read, so it
/// never has to upgrade a stale read snapshot, which SQLite refuses at once with SQLITE_BUSY when another
/// process (a second instance on the same file) wrote in between.
pub(crate) async fn begin_immediate(
    writer: &SqlitePool,
) -> Result<sqlx::Transaction<'static, Sqlite>, StoreError> {
    Ok(writer.begin_with("BEGIN IMMEDIATE").await?)
}

/// Runs a packet insert or conditional update (`write`, ending in `RETURNING id`) and, when it wrote the row,
/// appends the packet's evaluation, history events and webhook deliveries, in one IMMEDIATE transaction and
/// one round trip: each statement after the write runs only if the one before it changed a row (`changes()`).
pub(crate) async fn write_packet(
    store: &SqlStore,
    write: Statement<'_>,
    tenant: &str,
    appended: &Appended<'_>,
    outbox: &[OutboxEvent],
) -> Result<Written, StoreError> {
    let mut batch = write;
    if let Some(evaluation) = appended.evaluation {
        let insert = store.sql(&format!("{INSERT_EVALUATION} WHERE changes() > 0"));
        batch.then(evaluation_insert(insert, tenant, evaluation)?);
    }
    for event in appended.events {
        let insert = store
            .sql(
                "INSERT INTO packet_events (id, packet_id, tenant_id, event_type, actor, details, created_at)
                 SELECT ?, ?, ?, ?, ?, ?, ? WHERE changes() > 0",
            )
            .bind(event.id)
            .bind(event.packet_id)
            .bind(tenant)
            .bind(&event.event_type)
            .bind(&event.actor)
            .bind(Param::document(&event.details)?)
            .bind(event.timestamp);
        batch.then(insert);
    }
    if let Some(deliveries) = store.fan_out(tenant, outbox, " AND changes() > 0")? {
        batch.then(deliveries);
    }
    let mut tx = store.begin().await?;
    let rows = tx.rows(batch).await?;
    let written = Written {
        rows: rows
            .iter()
            .filter(|row| row.has("id") && !row.has("delivery"))
            .count() as u64,
        deliveries: super::announce::fresh_deliveries_in(&rows)?,
    };
    if written.rows > 0 {
        tx.commit().await?;
    }
    Ok(written)
}

/// Appends one `EXISTS` over the packet's JSON tag array per wanted tag.
pub(crate) fn push_has_tags<'q>(statement: &mut Statement<'q>, tags: &'q [String]) {
    for tag in tags {
        statement.push_bind(
            " AND EXISTS (SELECT 1 FROM json_each(packets.tags) WHERE json_each.value = ?)",
            tag,
        );
    }
}

/// The page and count statements of an FTS5 search; None when the text has no word to search for.
pub(crate) fn search_statements<'q>(
    tenant: &'q str,
    query: &'q SearchQuery,
) -> Option<(Statement<'q>, Statement<'q>)> {
    let words = query.fts5_words()?;
    let filtered = |select: &str| {
        let mut statement = Statement::new(
            Backend::Sqlite,
            &format!("{select} FROM packets_fts JOIN packets p ON p.rowid = packets_fts.rowid"),
        );
        statement
            .push_bind(
                " WHERE packets_fts MATCH ?",
                Param::OwnedText(words.clone()),
            )
            .push_bind(" AND p.tenant_id = ?", tenant);
        push_search_filters(&mut statement, "p.", query);
        statement
    };
    let mut page = filtered("SELECT p.doc");
    // Summary hits weigh ten times context hits; bm25 is lower for better matches.
    page.push_bind(
        " ORDER BY lower(json_extract(p.doc, '$.context.summary')) = lower(?) DESC,
                   bm25(packets_fts, 10.0, 1.0), p.created_at DESC, p.id DESC",
        &query.text,
    )
    .push_limit_offset(&query.page);
    Some((page, filtered("SELECT count(*)")))
}

/// Appends `records` as multi-row INSERTs in one transaction, pushing the ids each inserted.
pub(crate) async fn insert_records(
    writer: &SqlitePool,
    records: &[SealedRecord],
    inserted: &mut Vec<Uuid>,
) -> Result<(), StoreError> {
    let mut tx = begin_immediate(writer).await?;
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
            inserted.push(parse_id(&id)?);
        }
    }
    tx.commit().await?;
    Ok(())
}
