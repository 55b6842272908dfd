//! The one `Store`: a SQLite or PostgreSQL connection pool and how a [`Statement`] runs on it. Reads and
//! writes are separate calls because SQLite routes them to different pools (one writer, many readers).

use super::rate_windows::MemoryCounters;
use super::row::Row;
use super::statement::{bind_postgres, bind_sqlite, Statement};
use super::{Backend, StoreError};

/// The driver's errors stay inside the store: callers see only whether the database was out of reach.
impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_) => StoreError::Unavailable(error.to_string()),
            other => StoreError::Database(other.to_string()),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migration(error.to_string())
    }
}

use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};

/// Binds `$statement` for the store's backend as `$query` and evaluates `$body` with `$pool` the SQLite
/// pool named `$sqlite` (reader or writer) or the PostgreSQL pool: one body, compiled once per backend.
macro_rules! on_pool {
    ($store:expr, $statement:expr, $sqlite:ident, |$query:ident, $pool:ident| $body:expr) => {{
        let (sql, params) = $statement.into_parts();
        match &$store.pools {
            Pools::Sqlite { $sqlite: $pool, .. } => {
                let $query = bind_sqlite(sqlx::query(&sql), params);
                $body
            }
            Pools::Postgres($pool) => {
                let $query = bind_postgres(sqlx::query(&sql), params);
                $body
            }
        }
    }};
}

/// [`on_pool!`] for a statement inside a transaction.
macro_rules! in_transaction {
    ($tx:expr, $statement:expr, |$query:ident, $inner:ident| $body:expr) => {{
        let (sql, params) = $statement.into_parts();
        match $tx {
            Tx::Sqlite($inner) => {
                let $query = bind_sqlite(sqlx::query(&sql), params);
                $body
            }
            Tx::Postgres($inner) => {
                let $query = bind_postgres(sqlx::query(&sql), params);
                $body
            }
        }
    }};
}

pub struct SqlStore {
    pub(crate) pools: Pools,
    /// Signalled when deliveries were put back in the outbox (retry-all).
    pub(crate) deliveries_requeued: std::sync::Arc<tokio::sync::Notify>,
    /// Deliveries this process's writes wrote, for their first attempt from memory.
    pub(crate) fresh_deliveries: std::sync::Arc<crate::webhooks::fresh::FreshDeliveries>,
    /// How long a delivery written here is held for that first attempt.
    pub(crate) delivery_lease: std::time::Duration,
    /// Signalled when a write in this process gave a packet a checkpoint deadline.
    pub(crate) deadline_set: std::sync::Arc<tokio::sync::Notify>,
    /// Live events as they are committed (fed by this process on SQLite, by `LISTEN` on PostgreSQL).
    pub(crate) live: tokio::sync::broadcast::Sender<std::sync::Arc<crate::announce::LiveNotice>>,
    /// PostgreSQL: the `NOTIFY` channel live events cross instances on (one per schema).
    pub(crate) live_channel: String,
}

pub(crate) enum Pools {
    /// One file in WAL mode, one writer connection (SQLite serialises writers anyway, and a single
    /// connection turns lock contention into a queue) and a pool of readers.
    Sqlite {
        writer: SqlitePool,
        reader: SqlitePool,
        /// Request windows of the rate limits: this process owns the file, so they live in its memory.
        rate_windows: MemoryCounters,
    },
    Postgres(PgPool),
}

/// A write refused because it would break a unique index.
pub(crate) struct Duplicate;

fn unique<T>(result: Result<T, sqlx::Error>) -> Result<Result<T, Duplicate>, StoreError> {
    match result {
        Ok(value) => Ok(Ok(value)),
        Err(sqlx::Error::Database(error)) if error.is_unique_violation() => Ok(Err(Duplicate)),
        Err(error) => Err(error.into()),
    }
}

impl SqlStore {
    /// `options.live_buffer`: live events buffered per subscriber; one further behind is dropped (`Lagged`),
    /// never waited for.
    pub(crate) fn new(pools: Pools, options: &crate::store::StoreOptions) -> Self {
        Self {
            pools,
            deliveries_requeued: Default::default(),
            fresh_deliveries: Default::default(),
            delivery_lease: options.delivery_lease,
            deadline_set: Default::default(),
            live: tokio::sync::broadcast::channel(options.live_buffer.max(1)).0,
            live_channel: String::new(),
        }
    }

    pub(crate) fn backend(&self) -> Backend {
        match self.pools {
            Pools::Sqlite { .. } => Backend::Sqlite,
            Pools::Postgres(_) => Backend::Postgres,
        }
    }

    /// A statement for this store's backend.
    pub(crate) fn sql<'a>(&self, sql: &str) -> Statement<'a> {
        Statement::new(self.backend(), sql)
    }

    pub(crate) async fn rows(&self, statement: Statement<'_>) -> Result<Vec<Row>, StoreError> {
        on_pool!(self, statement, reader, |query, pool| Ok(query
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(Row::from)
            .collect()))
    }

    pub(crate) async fn optional_row(
        &self,
        statement: Statement<'_>,
    ) -> Result<Option<Row>, StoreError> {
        on_pool!(self, statement, reader, |query, pool| Ok(query
            .fetch_optional(pool)
            .await?
            .map(Row::from)))
    }

    pub(crate) async fn row(&self, statement: Statement<'_>) -> Result<Row, StoreError> {
        on_pool!(self, statement, reader, |query, pool| Ok(query
            .fetch_one(pool)
            .await
            .map(Row::from)?))
    }

    /// The first column of a one-row read, such as a count.
    pub(crate) async fn count(&self, statement: Statement<'_>) -> Result<i64, StoreError> {
        self.row(statement).await?.first_integer()
    }

    /// Runs a write; the number of rows it changed.
    pub(crate) async fn execute(&self, statement: Statement<'_>) -> Result<u64, StoreError> {
        on_pool!(self, statement, writer, |query, pool| Ok(query
            .execute(pool)
            .await?
            .rows_affected()))
    }

    /// Runs a write whose `RETURNING` yields at most one row.
    pub(crate) async fn write_returning(
        &self,
        statement: Statement<'_>,
    ) -> Result<Option<Row>, StoreError> {
        on_pool!(self, statement, writer, |query, pool| Ok(query
            .fetch_optional(pool)
            .await?
            .map(Row::from)))
    }

    /// Runs a write whose `RETURNING` yields any number of rows.
    pub(crate) async fn write_rows(
        &self,
        statement: Statement<'_>,
    ) -> Result<Vec<Row>, StoreError> {
        on_pool!(self, statement, writer, |query, pool| Ok(query
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(Row::from)
            .collect()))
    }

    /// Runs a write that a unique index may refuse; such a refusal is an answer, not a failure.
    pub(crate) async fn execute_unique(
        &self,
        statement: Statement<'_>,
    ) -> Result<Result<u64, Duplicate>, StoreError> {
        on_pool!(self, statement, writer, |query, pool| unique(
            query.execute(pool).await.map(|done| done.rows_affected())
        ))
    }

    /// [`Self::write_returning`] for a write that a unique index may refuse.
    pub(crate) async fn write_returning_unique(
        &self,
        statement: Statement<'_>,
    ) -> Result<Result<Option<Row>, Duplicate>, StoreError> {
        on_pool!(self, statement, writer, |query, pool| unique(
            query
                .fetch_optional(pool)
                .await
                .map(|row| row.map(Row::from))
        ))
    }

    /// A write transaction (IMMEDIATE on SQLite: [`super::sqlite::begin_immediate`]).
    pub(crate) async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(match &self.pools {
            Pools::Sqlite { writer, .. } => {
                Tx::Sqlite(super::sqlite::begin_immediate(writer).await?)
            }
            Pools::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }
}

/// A write transaction on either backend; dropped without `commit`, it rolls back.
pub(crate) enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

impl Tx {
    pub(crate) async fn execute(&mut self, statement: Statement<'_>) -> Result<u64, StoreError> {
        in_transaction!(self, statement, |query, tx| Ok(query
            .execute(&mut **tx)
            .await?
            .rows_affected()))
    }

    pub(crate) async fn optional_row(
        &mut self,
        statement: Statement<'_>,
    ) -> Result<Option<Row>, StoreError> {
        in_transaction!(self, statement, |query, tx| Ok(query
            .fetch_optional(&mut **tx)
            .await?
            .map(Row::from)))
    }

    pub(crate) async fn rows(&mut self, statement: Statement<'_>) -> Result<Vec<Row>, StoreError> {
        in_transaction!(self, statement, |query, tx| Ok(query
            .fetch_all(&mut **tx)
            .await?
            .into_iter()
            .map(Row::from)
            .collect()))
    }

    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        match self {
            Tx::Sqlite(tx) => tx.commit().await?,
            Tx::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }
}
