//! What a committed write announces (`crate::announce`): its webhook deliveries, written in the write's
//! transaction, and its live event — `NOTIFY` in the transaction on PostgreSQL, published in this process after
//! the commit on SQLite.

use super::database::SqlStore;
use super::row::Row;
use super::statement::{Param, Statement};
use super::{Backend, StoreError};
use crate::announce::Announcement;
use crate::timestamp::Timestamp;
use crate::webhooks::{OutboxEvent, TakenDelivery};
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
        let deliveries = match self.fan_out(tenant, &announcement.outbox, "")? {
            Some(insert) => fresh_deliveries_in(&tx.rows(insert).await?)?,
            None => Vec::new(),
        };
        if self.backend() == Backend::Postgres {
            for live in &announcement.live {
                let notify = self
                    .sql("SELECT pg_notify(?, ?)")
                    .bind(self.live_channel.as_str())
                    .bind(Param::OwnedText(super::notifications::notification(live)));
                tx.execute(notify).await?;
            }
        }
        tx.commit().await?;
        self.announced(deliveries, announcement);
        Ok(())
    }

    /// After a commit: hands the deliveries written to the delivery worker for their first attempt, and
    /// publishes the live event in this process where the database does not (SQLite).
    pub(crate) fn announced(&self, deliveries: Vec<TakenDelivery>, announcement: &Announcement) {
        self.fresh_deliveries.push(deliveries);
        if self.backend() == Backend::Sqlite {
            for live in &announcement.live {
                // No receiver (nobody listening) is not an error.
                let _ = self.live.send(Arc::new(live.clone()));
            }
        }
    }

    /// Until when a delivery written now is held for its first attempt by this process.
    pub(crate) fn first_attempt_lease_until(&self) -> Timestamp {
        Timestamp::now().after(self.delivery_lease)
    }

    /// The statement that writes `outbox`'s deliveries, one per active hook of the tenant that asked for an
    /// event, whatever the number of events and hooks, each already taken for its first attempt by this
    /// process (attempt 1, leased for [`SqlStore::delivery_lease`](SqlStore)); it returns each delivery as a
    /// take does ([`TAKEN_COLUMNS`](super::webhooks::TAKEN_COLUMNS)) plus a `delivery` column. `condition`
    /// (`" AND …"`) is added to its `WHERE`; None when there is nothing to announce. (PostgreSQL's packet
    /// writes embed [`fan_out_sql`] in their one statement; SQLite's run this in the same round trip.)
    pub(crate) fn fan_out<'a>(
        &self,
        tenant: &'a str,
        outbox: &'a [OutboxEvent],
        condition: &str,
    ) -> Result<Option<Statement<'a>>, StoreError> {
        if outbox.is_empty() {
            return Ok(None);
        }
        let backend = self.backend();
        let lease_until = self.first_attempt_lease_until();
        // The parameters in the order of their placeholders: the lease, the events, the tenant.
        let mut insert = match backend {
            Backend::Sqlite => {
                let rows = vec!["(?, ?, ?, ?, ?)"; outbox.len()].join(", ");
                let mut insert =
                    Statement::new(backend, &fan_out_sql(backend, &rows, "?", "?", condition));
                insert.param(lease_until);
                for event in outbox {
                    insert
                        .param(event.id)
                        .param(event.name.as_str())
                        .param(event.packet_id)
                        .param(event.body.as_str())
                        .param(event.time);
                }
                insert
            }
            Backend::Postgres => {
                let mut insert =
                    Statement::new(backend, &fan_out_sql(backend, "?", "?", "?", condition));
                insert.param(lease_until).param(outbox_param(outbox)?);
                insert
            }
        };
        insert.param(tenant);
        Ok(Some(insert))
    }
}

/// The fan-out's SQL (see [`SqlStore::fan_out`]): the events come as rows of (id, name, packet_id, body,
/// time) parameters on SQLite (`events` holds their placeholders), as one JSON array on PostgreSQL (`events`
/// is its placeholder, [`outbox_param`]); each backend makes the delivery's id and matches the event's name
/// against the hook's list. The placeholders are given so that PostgreSQL's packet write can embed this in its
/// one statement.
pub(crate) fn fan_out_sql(
    backend: Backend,
    events: &str,
    tenant: &str,
    lease_until: &str,
    condition: &str,
) -> String {
    let (rows, new_id, asked) = match backend {
        Backend::Sqlite => (
            format!(
                "(SELECT column1 AS id, column2 AS name, column3 AS packet_id, column4 AS body, column5 AS at
                  FROM (VALUES {events})) AS o"
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
         SELECT {new_id}, w.id, w.tenant_id, o.id, o.name, o.packet_id, o.body, o.at, 'pending', 1,
                {lease_until}, o.at, o.at
         FROM webhooks w, {rows}
         WHERE w.tenant_id = {tenant} AND w.active AND {asked}{condition}
         {taken}, CAST(1 AS BIGINT) AS delivery",
        taken = super::webhooks::TAKEN_COLUMNS,
    )
}

/// The deliveries a fan-out returned among `rows` (those with a `delivery`; a packet write's own rows have
/// none), taken for their first attempt.
pub(crate) fn fresh_deliveries_in(rows: &[Row]) -> Result<Vec<TakenDelivery>, StoreError> {
    rows.iter()
        .filter(|row| {
            row.has("delivery") && matches!(row.optional_integer("delivery"), Ok(Some(_)))
        })
        .map(super::webhooks::taken_from)
        .collect()
}

/// The outbox events as PostgreSQL's fan-out's JSON parameter.
pub(crate) fn outbox_param(outbox: &[OutboxEvent]) -> Result<Param<'static>, StoreError> {
    let events: Vec<_> = outbox
        .iter()
        .map(|event| OutboxRow {
            id: event.id,
            name: &event.name,
            packet_id: event.packet_id,
            body: &event.body,
            at: event.time,
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
    at: Timestamp,
}

/// A delivery's id: a version 7 UUID with its event's time (so that deliveries are appended to the id index,
/// not scattered through it) and random bits of its own.
const SQLITE_NEW_ID: &str = "substr(o.id, 1, 15) || lower(substr(hex(randomblob(2)), 2) || '-'
     || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6)))";
const POSTGRES_NEW_ID: &str =
    "(substr(o.id::text, 1, 15) || substr(gen_random_uuid()::text, 16))::uuid";
