//! What a committed write announces (`crate::announce`): its webhook deliveries, written in the write's
//! transaction, and its live event — `NOTIFY` in the transaction on PostgreSQL, published in this process after
//! the commit on SQLite.

use super::database::{SqlStore, Tx};
use super::statement::{Param, Statement};
use super::{Backend, StoreError};
use crate::announce::Announcement;
use crate::webhooks::OutboxEvent;
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
                .bind(super::notifications::LIVE_CHANNEL)
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
/// event; how many. (PostgreSQL's packet writes do the same in their one statement.)
pub(crate) async fn fan_out_in(
    tx: &mut Tx,
    backend: Backend,
    tenant: &str,
    outbox: &[OutboxEvent],
) -> Result<u64, StoreError> {
    let mut deliveries = 0;
    if outbox.is_empty() {
        return Ok(deliveries);
    }
    let hooks = tx
        .rows(
            Statement::new(
                backend,
                "SELECT id, events FROM webhooks WHERE tenant_id = ? AND active = ?",
            )
            .bind(tenant)
            .bind(true),
        )
        .await?;
    for hook in &hooks {
        let (hook_id, events) = (hook.id("id")?, hook.texts("events")?);
        for event in outbox.iter().filter(|event| events.contains(&event.name)) {
            let insert = Statement::new(
                backend,
                "INSERT INTO webhook_deliveries (id, webhook_id, tenant_id, event_id, event_type, packet_id, body,
                                                 event_time, status, attempts, next_retry_at, created_at, updated_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)",
            )
            .bind(Uuid::now_v7())
            .bind(hook_id)
            .bind(tenant)
            .bind(event.id)
            .bind(&event.name)
            .bind(event.packet_id)
            .bind(event.body.as_str())
            .bind(event.time)
            .bind(event.time)
            .bind(event.time)
            .bind(event.time);
            deliveries += tx.execute(insert).await?;
        }
    }
    Ok(deliveries)
}
