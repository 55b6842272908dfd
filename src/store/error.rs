//! The store's one error type. The driver's errors stay inside the store: callers see only whether the
//! database was out of reach, refused the work, or returned something unreadable.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached, or did not answer in time: callers answer 503 and may retry.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// The database refused work it should do (a bug, or a broken database): callers answer 500.
    #[error("database error: {0}")]
    Database(String),
    #[error("migration failed: {0}")]
    Migration(String),
    /// A row that the database returned could not be read back (a bug or a hand-edited row).
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// The store did not answer within the caller's deadline.
    pub fn timed_out() -> Self {
        StoreError::Unavailable("the database did not answer in time".into())
    }

    /// Whether retrying later may succeed (the database was out of reach), as opposed to a failure of the
    /// work itself.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }

    pub(crate) fn corrupt(what: &str, error: impl std::fmt::Display) -> Self {
        StoreError::Corrupt(format!("{what}: {error}"))
    }
}

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
