//! What a committed write announces (`crate::announce`): its webhook deliveries, written in the write's
//! transaction, and its live event — `NOTIFY` in the transaction on PostgreSQL, published in this process after
//! the commit on SQLite.

use super::database::{SqlStore, Tx};
use super::statement::{Param, Statement};
use super::{Backend, StoreError};
use crate::announce::Announcement;
use crate::timestamp::Timestamp;
use crate::webhooks::OutboxEvent;
use serde::Serialize;
use std::sync::Arc;
use uuid::Uuid;

impl SqlStore {
    /// Runs a write with what it announces, in one transaction: the write, its webhook deliveries and (on
    /// PostgreSQL) the `NOTIFY` of its live event; on SQLite the live event is published after the commit.
    pub(crate) async fn write_announced(
        &self,
        write: Statement<'_>,
        tenant: &str,
        announcement: &Announcement,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        tx.execute(write).await?;
        let deliveries = fan_out_in(&mut tx, self.backend(), tenant, &announcement.outbox).await?;
        if let (Backend::Postgres, Some(live)) = (self.backend(), &announcement.live) {
            let notify = self
                .sql("SELECT pg_notify(?, ?)")
                .bind(self.live_channel.as_str())
                .bind(Param::OwnedText(super::notifications::notification(live)));
            tx.execute(notify).await?;
        }
        tx.commit().await?;
        self.announced(deliveries, announcement);
        Ok(())
    }

    /// After a commit: wakes the delivery worker when deliveries were written, and publishes the live event
    /// in this process where the database does not (SQLite).
    pub(crate) fn announced(&self, deliveries: u64, announcement: &Announcement) {
        if deliveries > 0 {
            self.outbox_written.notify_one();
        }
        if self.backend() == Backend::Sqlite {
            if let Some(live) = &announcement.live {
                // No receiver (nobody listening) is not an error.
                let _ = self.live.send(Arc::new(live.clone()));
            }
        }
    }
}

/// The outbox, inside a write's transaction: one delivery per active hook of the tenant that asked for an
/// event, in one statement whatever the number of events and hooks; how many. (PostgreSQL's packet writes do
/// the same within their one statement; SQLite's run [`fan_out`] in the same round trip as the write.)
pub(crate) async fn fan_out_in(
    tx: &mut Tx,
    backend: Backend,
    tenant: &str,
    outbox: &[OutboxEvent],
) -> Result<u64, StoreError> {
    match fan_out(backend, tenant, outbox, "")? {
        Some(insert) => tx.execute(insert).await,
        None => Ok(0),
    }
}

/// The statement that writes `outbox`'s deliveries (see [`fan_out_in`]), returning a `delivery` column per
/// delivery, with `condition` (`" AND …"`) added; None when there is nothing to announce.
pub(crate) fn fan_out<'a>(
    backend: Backend,
    tenant: &'a str,
    outbox: &[OutboxEvent],
    condition: &str,
) -> Result<Option<Statement<'a>>, StoreError> {
    if outbox.is_empty() {
        return Ok(None);
    }
    let mut insert = Statement::new(backend, &fan_out_sql(backend, "?", "?", condition));
    insert.param(outbox_param(backend, outbox)?).param(tenant);
    Ok(Some(insert))
}

/// The fan-out's SQL: the events come as one JSON array (the placeholder `events`, [`outbox_param`]); each
/// backend reads it as rows, makes the delivery's id, and matches the event's name against the hook's list.
/// The placeholders are given so that PostgreSQL's packet write can embed this in its one statement.
pub(crate) fn fan_out_sql(backend: Backend, events: &str, tenant: &str, condition: &str) -> String {
    let (rows, new_id, asked) = match backend {
        Backend::Sqlite => (
            format!(
                "(SELECT value ->> 'id' AS id, value ->> 'name' AS name, value ->> 'packet_id' AS packet_id,
                         value ->> 'body' AS body, value ->> 'at' AS at FROM json_each({events})) AS o"
            ),
            SQLITE_NEW_ID,
            "EXISTS (SELECT 1 FROM json_each(w.events) WHERE json_each.value = o.name)",
        ),
        Backend::Postgres => (
            format!(
                "jsonb_to_recordset({events}::jsonb)
                     AS o(id uuid, name text, packet_id uuid, body text, at timestamptz)"
            ),
            POSTGRES_NEW_ID,
            "o.name = ANY (w.events)",
        ),
    };
    format!(
        "INSERT INTO webhook_deliveries (id, webhook_id, tenant_id, event_id, event_type, packet_id, body,
                                         event_time, status, attempts, next_retry_at, created_at, updated_at)
         SELECT {new_id}, w.id, w.tenant_id, o.id, o.name, o.packet_id, o.body, o.at, 'pending', 0,
                o.at, o.at, o.at
         FROM webhooks w, {rows}
         WHERE w.tenant_id = {tenant} AND w.active AND {asked}{condition}
         RETURNING 1 AS delivery"
    )
}

/// The outbox events as the fan-out's JSON parameter.
pub(crate) fn outbox_param(
    backend: Backend,
    outbox: &[OutboxEvent],
) -> Result<Param<'static>, StoreError> {
    let events: Vec<_> = outbox
        .iter()
        .map(|event| OutboxRow {
            id: event.id,
            name: &event.name,
            packet_id: event.packet_id,
            body: &event.body,
            at: match backend {
                Backend::Sqlite => At::Micros(event.time.micros()),
                Backend::Postgres => At::Time(event.time),
            },
        })
        .collect();
    Param::json_text(&events)
}

/// An outbox event as the fan-out statement reads it from its JSON parameter.
#[derive(Serialize)]
struct OutboxRow<'a> {
    id: Uuid,
    name: &'a str,
    packet_id: Option<Uuid>,
    body: &'a str,
    at: At,
}

/// A time as each backend's column holds it: Unix microseconds (SQLite), or RFC 3339 for `timestamptz`.
#[derive(Serialize)]
#[serde(untagged)]
enum At {
    Micros(i64),
    Time(Timestamp),
}

/// A delivery's id: a version 7 UUID with its event's time (so that deliveries are appended to the id index,
/// not scattered through it) and random bits of its own.
const SQLITE_NEW_ID: &str = "substr(o.id, 1, 15) || lower(substr(hex(randomblob(2)), 2) || '-'
     || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6)))";
const POSTGRES_NEW_ID: &str =
    "(substr(o.id::text, 1, 15) || substr(gen_random_uuid()::text, 16))::uuid";
