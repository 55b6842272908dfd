//! One SQL text for both databases: statements are written with `?` placeholders and domain-typed
//! parameters; each backend renders the placeholders (`?` for SQLite, `$n` for PostgreSQL) and encodes the
//! parameters in its own native types (ids as TEXT or `uuid`, times as Unix microseconds or `timestamptz`,
//! documents as TEXT or `jsonb`, lists as a JSON array or `text[]`).

use super::{Backend, StoreError};
use crate::paging::Page;
use crate::timestamp::Timestamp;
use serde_json::value::RawValue;
use sqlx::postgres::PgArguments;
use sqlx::sqlite::SqliteArguments;
use sqlx::types::Json;
use sqlx::{Postgres, Sqlite};
use std::fmt::Write as _;
use uuid::Uuid;

pub(crate) type PgQuery<'q> = sqlx::query::Query<'q, Postgres, PgArguments>;
pub(crate) type SqliteQuery<'q> = sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>>;

/// A value bound to a placeholder, named by what it is rather than how a database stores it.
pub(crate) enum Param<'a> {
    Text(&'a str),
    OptionalText(Option<&'a str>),
    OwnedText(String),
    Integer(i64),
    OptionalInteger(Option<i64>),
    Id(Uuid),
    OptionalId(Option<Uuid>),
    Time(Timestamp),
    OptionalTime(Option<Timestamp>),
    Bool(bool),
    /// A JSON document in a column the database reads as JSON (`jsonb` on PostgreSQL).
    Document(Box<RawValue>),
    /// A list of strings (`text[]` on PostgreSQL, a JSON array on SQLite).
    Texts(&'a [String]),
    Bytes(&'a [u8]),
}

/// `From` for each Rust type with one obvious parameter kind.
macro_rules! params_from {
    ($($type:ty => $variant:ident $(via $convert:expr)?),* $(,)?) => {$(
        impl<'a> From<$type> for Param<'a> {
            fn from(value: $type) -> Self {
                Param::$variant($($convert)?(value))
            }
        }
    )*};
}

params_from! {
    &'a str => Text,
    &'a String => Text via String::as_str,
    Option<&'a str> => OptionalText,
    &'a Option<String> => OptionalText via Option::as_deref,
    i64 => Integer,
    Option<i64> => OptionalInteger,
    Uuid => Id,
    Option<Uuid> => OptionalId,
    Timestamp => Time,
    Option<Timestamp> => OptionalTime,
    bool => Bool,
    &'a [String] => Texts,
    &'a [u8] => Bytes,
}

impl Param<'_> {
    /// `value` as a JSON document parameter.
    pub(crate) fn document<T: serde::Serialize + ?Sized>(value: &T) -> Result<Self, StoreError> {
        serde_json::value::to_raw_value(value)
            .map(Param::Document)
            .map_err(|error| StoreError::corrupt("document", error))
    }

    /// `value` serialised to JSON, stored as TEXT on both backends.
    pub(crate) fn json_text<T: serde::Serialize + ?Sized>(value: &T) -> Result<Self, StoreError> {
        serde_json::to_string(value)
            .map(Param::OwnedText)
            .map_err(|error| StoreError::corrupt("document", error))
    }
}

/// SQL text under construction with its parameters, rendered for one backend as it is pushed.
pub(crate) struct Statement<'a> {
    backend: Backend,
    sql: String,
    placeholders: usize,
    params: Vec<Param<'a>>,
}

impl<'a> Statement<'a> {
    pub(crate) fn new(backend: Backend, sql: &str) -> Self {
        Statement::after(backend, 0, sql)
    }

    /// A statement to embed in a larger PostgreSQL statement after `before` parameters of its own: its
    /// placeholders are numbered from `before + 1` (SQLite's are not numbered).
    pub(crate) fn after(backend: Backend, before: usize, sql: &str) -> Self {
        let mut statement = Statement {
            backend,
            sql: String::with_capacity(sql.len() + 16),
            placeholders: before,
            params: Vec::new(),
        };
        statement.push(sql);
        statement
    }

    /// Appends SQL whose `?` placeholders (outside quoted literals) take the next parameters in order.
    pub(crate) fn push(&mut self, sql: &str) -> &mut Self {
        if self.backend == Backend::Sqlite {
            self.sql.push_str(sql);
            return self;
        }
        let mut quoted = false;
        for character in sql.chars() {
            match character {
                '\'' => {
                    quoted = !quoted;
                    self.sql.push(character);
                }
                '?' if !quoted => {
                    self.placeholders += 1;
                    let _ = write!(self.sql, "${}", self.placeholders);
                }
                _ => self.sql.push(character),
            }
        }
        self
    }

    /// Binds the next placeholder.
    pub(crate) fn param(&mut self, param: impl Into<Param<'a>>) -> &mut Self {
        self.params.push(param.into());
        self
    }

    /// Appends `sql` ending in a placeholder and binds it.
    pub(crate) fn push_bind(&mut self, sql: &str, param: impl Into<Param<'a>>) -> &mut Self {
        self.push(sql).param(param)
    }

    /// Binds the next placeholder (builder style, for fixed statements).
    pub(crate) fn bind(mut self, param: impl Into<Param<'a>>) -> Self {
        self.params.push(param.into());
        self
    }

    /// Appends ` (?, ?, …)` binding each of `values`.
    pub(crate) fn push_list<P: Into<Param<'a>>>(
        &mut self,
        values: impl IntoIterator<Item = P>,
    ) -> &mut Self {
        self.push(" (");
        for (index, value) in values.into_iter().enumerate() {
            self.push(if index == 0 { "?" } else { ", ?" }).param(value);
        }
        self.push(")")
    }

    /// Appends ` AND (time, id) < (?, ?)` when `page` continues after a cursor.
    pub(crate) fn push_after_cursor(&mut self, time_column: &str, page: &Page) -> &mut Self {
        if let Some(cursor) = page.cursor {
            self.push_bind(&format!(" AND ({time_column}, id) < (?"), cursor.at)
                .push_bind(", ?)", cursor.id);
        }
        self
    }

    /// Appends newest-first order by `time_column` then id, and the page: one row beyond the limit (so
    /// that [`Page::cut`] tells whether more follow), after the offset unless a cursor is given.
    pub(crate) fn push_newest_first(&mut self, time_column: &str, page: &Page) -> &mut Self {
        self.push_bind(
            &format!(" ORDER BY {time_column} DESC, id DESC LIMIT ?"),
            page.probe(),
        )
        .push_bind(" OFFSET ?", page.skipped())
    }

    /// Appends ` LIMIT ? OFFSET ?` for exactly the page's rows (listings that count a total instead).
    pub(crate) fn push_limit_offset(&mut self, page: &Page) -> &mut Self {
        self.push_bind(" LIMIT ?", page.limit)
            .push_bind(" OFFSET ?", page.offset)
    }

    pub(crate) fn backend(&self) -> Backend {
        self.backend
    }

    /// Appends `next` to run after this statement in the same round trip: SQLite runs the statements of one
    /// query in order, each taking its parameters in turn (its placeholders are not numbered, so this is for
    /// SQLite only).
    pub(crate) fn then(&mut self, next: Statement<'a>) -> &mut Self {
        debug_assert!(self.backend == Backend::Sqlite && next.backend == Backend::Sqlite);
        self.sql.push_str(";\n");
        self.sql.push_str(&next.sql);
        self.params.extend(next.params);
        self
    }

    pub(crate) fn into_parts(self) -> (String, Vec<Param<'a>>) {
        (self.sql, self.params)
    }
}

/// Binds `params` in SQLite's encodings.
pub(crate) fn bind_sqlite<'q>(
    mut query: SqliteQuery<'q>,
    params: Vec<Param<'q>>,
) -> SqliteQuery<'q> {
    for param in params {
        query = match param {
            Param::Text(text) => query.bind(text),
            Param::OptionalText(text) => query.bind(text),
            Param::OwnedText(text) => query.bind(text),
            Param::Integer(value) => query.bind(value),
            Param::OptionalInteger(value) => query.bind(value),
            Param::Id(id) => query.bind(id.to_string()),
            Param::OptionalId(id) => query.bind(id.map(|id| id.to_string())),
            Param::Time(at) => query.bind(at.micros()),
            Param::OptionalTime(at) => query.bind(at.map(|at| at.micros())),
            Param::Bool(value) => query.bind(i64::from(value)),
            Param::Document(document) => query.bind(String::from(Box::<str>::from(document))),
            Param::Texts(list) => {
                query.bind(serde_json::to_string(list).unwrap_or_else(|_| "[]".to_string()))
            }
            Param::Bytes(bytes) => query.bind(bytes),
        };
    }
    query
}

/// Binds `params` in PostgreSQL's native types.
pub(crate) fn bind_postgres<'q>(mut query: PgQuery<'q>, params: Vec<Param<'q>>) -> PgQuery<'q> {
    for param in params {
        query = match param {
            Param::Text(text) => query.bind(text),
            Param::OptionalText(text) => query.bind(text),
            Param::OwnedText(text) => query.bind(text),
            Param::Integer(value) => query.bind(value),
            Param::OptionalInteger(value) => query.bind(value),
            Param::Id(id) => query.bind(id),
            Param::OptionalId(id) => query.bind(id),
            Param::Time(at) => query.bind(at.as_datetime()),
            Param::OptionalTime(at) => query.bind(at.map(|at| at.as_datetime())),
            Param::Bool(value) => query.bind(value),
            Param::Document(document) => query.bind(Json(document)),
            Param::Texts(list) => query.bind(list),
            Param::Bytes(bytes) => query.bind(bytes),
        };
    }
    query
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_for_postgres_only() {
        let mut statement = Statement::new(Backend::Postgres, "SELECT ? WHERE a = '?' AND b = ?");
        statement.push(" AND c IN").push_list(["x", "y"]);
        assert_eq!(
            statement.into_parts().0,
            "SELECT $1 WHERE a = '?' AND b = $2 AND c IN ($3, $4)"
        );
        let statement = Statement::after(Backend::Postgres, 3, "INSERT INTO t SELECT ?, ?");
        assert_eq!(statement.into_parts().0, "INSERT INTO t SELECT $4, $5");
        let mut statement = Statement::new(Backend::Sqlite, "SELECT ? WHERE b = ?");
        statement.push(" AND c IN").push_list(["x"]);
        assert_eq!(
            statement.into_parts().0,
            "SELECT ? WHERE b = ? AND c IN (?)"
        );
    }
}
