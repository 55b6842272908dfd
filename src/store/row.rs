//! A row read back from either database, with getters named by what a column holds; each decodes the
//! backend's native type (see `statement.rs` for the encodings).

use super::StoreError;
use crate::timestamp::Timestamp;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::types::Json;
use sqlx::Row as _;
use uuid::Uuid;

pub(crate) enum Row {
    Sqlite(SqliteRow),
    Postgres(PgRow),
}

/// Reads `column` as `$ty` from whichever row it is.
macro_rules! get {
    ($row:expr, $column:expr, $ty:ty) => {
        match $row {
            Row::Sqlite(row) => row.try_get::<$ty, _>($column)?,
            Row::Postgres(row) => row.try_get::<$ty, _>($column)?,
        }
    };
}

impl From<SqliteRow> for Row {
    fn from(row: SqliteRow) -> Self {
        Row::Sqlite(row)
    }
}

impl From<PgRow> for Row {
    fn from(row: PgRow) -> Self {
        Row::Postgres(row)
    }
}

impl Row {
    /// Whether the row has `column` (the rows of one SQLite query of several statements differ).
    pub(crate) fn has(&self, column: &str) -> bool {
        match self {
            Row::Sqlite(row) => row.try_column(column).is_ok(),
            Row::Postgres(row) => row.try_column(column).is_ok(),
        }
    }

    /// The first column, such as a count.
    pub(crate) fn first_integer(&self) -> Result<i64, StoreError> {
        Ok(get!(self, 0, i64))
    }

    pub(crate) fn text(&self, column: &str) -> Result<String, StoreError> {
        Ok(get!(self, column, String))
    }

    pub(crate) fn integer(&self, column: &str) -> Result<i64, StoreError> {
        Ok(get!(self, column, i64))
    }

    pub(crate) fn optional_integer(&self, column: &str) -> Result<Option<i64>, StoreError> {
        Ok(get!(self, column, Option<i64>))
    }

    pub(crate) fn optional_text(&self, column: &str) -> Result<Option<String>, StoreError> {
        Ok(get!(self, column, Option<String>))
    }

    pub(crate) fn optional_id(&self, column: &str) -> Result<Option<Uuid>, StoreError> {
        match self {
            Row::Sqlite(row) => row
                .try_get::<Option<String>, _>(column)?
                .map(|text| parse_id(&text))
                .transpose(),
            Row::Postgres(row) => Ok(row.try_get::<Option<Uuid>, _>(column)?),
        }
    }

    pub(crate) fn optional_float(&self, column: &str) -> Result<Option<f64>, StoreError> {
        Ok(get!(self, column, Option<f64>))
    }

    pub(crate) fn bool(&self, column: &str) -> Result<bool, StoreError> {
        Ok(match self {
            Row::Sqlite(row) => row.try_get::<i64, _>(column)? != 0,
            Row::Postgres(row) => row.try_get::<bool, _>(column)?,
        })
    }

    pub(crate) fn bytes(&self, column: &str) -> Result<Vec<u8>, StoreError> {
        Ok(get!(self, column, Vec<u8>))
    }

    pub(crate) fn id(&self, column: &str) -> Result<Uuid, StoreError> {
        match self {
            Row::Sqlite(row) => parse_id(&row.try_get::<String, _>(column)?),
            Row::Postgres(row) => Ok(row.try_get::<Uuid, _>(column)?),
        }
    }

    pub(crate) fn time(&self, column: &str) -> Result<Timestamp, StoreError> {
        self.optional_time(column)?
            .ok_or_else(|| StoreError::Corrupt(format!("{column} is null")))
    }

    pub(crate) fn optional_time(&self, column: &str) -> Result<Option<Timestamp>, StoreError> {
        match self {
            Row::Sqlite(row) => row
                .try_get::<Option<i64>, _>(column)?
                .map(|micros| {
                    Timestamp::from_micros(micros)
                        .ok_or_else(|| StoreError::Corrupt(format!("time {micros}")))
                })
                .transpose(),
            Row::Postgres(row) => Ok(row
                .try_get::<Option<DateTime<Utc>>, _>(column)?
                .map(Timestamp::from_datetime)),
        }
    }

    /// A document in a column the database reads as JSON (`jsonb` on PostgreSQL).
    pub(crate) fn document<T: DeserializeOwned>(&self, column: &str) -> Result<T, StoreError> {
        match self {
            Row::Sqlite(row) => parse_json(column, &row.try_get::<String, _>(column)?),
            Row::Postgres(row) => Ok(row.try_get::<Json<T>, _>(column)?.0),
        }
    }

    /// JSON kept as TEXT on both backends.
    pub(crate) fn json_text<T: DeserializeOwned>(&self, column: &str) -> Result<T, StoreError> {
        parse_json(column, &self.text(column)?)
    }

    /// A list of strings (`text[]` on PostgreSQL, a JSON array on SQLite).
    pub(crate) fn texts(&self, column: &str) -> Result<Vec<String>, StoreError> {
        match self {
            Row::Sqlite(row) => parse_json(column, &row.try_get::<String, _>(column)?),
            Row::Postgres(row) => Ok(row.try_get::<Vec<String>, _>(column)?),
        }
    }
}

pub(crate) fn parse_id(text: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(text).map_err(|_| StoreError::Corrupt(format!("uuid {text}")))
}

fn parse_json<T: DeserializeOwned>(column: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|error| StoreError::corrupt(column, error))
}
