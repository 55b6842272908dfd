//! What webhooks need stored. Implemented by `crate::store`; the outbox rows themselves are written by the
//! packet store with each packet change (`PacketStore::insert_packet` / `replace_packet`), already taken for
//! their first attempt and handed to [`WebhookStore::fresh_deliveries`].

use super::signing::Secret;
use super::{Delivery, DeliveryStatus, TakenDelivery, Webhook};
use crate::paging::Page;
use crate::persistence::StoreError;
use crate::timestamp::Timestamp;
use async_trait::async_trait;
use uuid::Uuid;

/// How attempt `attempt` of delivery `delivery_id` ended, as it is recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptRecord {
    pub delivery_id: Uuid,
    pub attempt: i64,
    pub status: DeliveryStatus,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub next_retry_at: Option<Timestamp>,
    pub at: Timestamp,
}

/// Why a hook could not be deactivated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deactivation {
    Done,
    AlreadyInactive,
    NotFound,
}

/// Figures for `/metrics` and `/system/health`, across every tenant.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeliveryFigures {
    pub webhooks: i64,
    pub active_webhooks: i64,
    /// Deliveries still to be sent (pending or failed and waiting for a retry).
    pub outbox_depth: i64,
    pub dead_letters: i64,
    pub oldest_pending_age_seconds: Option<f64>,
    pub delivered_last_hour: i64,
    pub failed_last_hour: i64,
    pub avg_delivery_latency_ms: Option<f64>,
}

#[async_trait]
pub trait WebhookStore: Send + Sync {
    async fn insert_webhook(&self, webhook: &Webhook, secret: &Secret) -> Result<(), StoreError>;
    /// The tenant's hooks, inactive ones included, oldest first.
    async fn list_webhooks(&self, tenant: &str) -> Result<Vec<Webhook>, StoreError>;
    async fn get_webhook(&self, tenant: &str, id: Uuid) -> Result<Option<Webhook>, StoreError>;
    /// Soft delete: the hook stays listed, inactive, and its undelivered events are never sent.
    async fn deactivate_webhook(
        &self,
        tenant: &str,
        id: Uuid,
        at: Timestamp,
    ) -> Result<Deactivation, StoreError>;
    /// One hook's deliveries, newest first.
    async fn list_deliveries(
        &self,
        tenant: &str,
        webhook_id: Uuid,
        status: Option<DeliveryStatus>,
        page: Page,
    ) -> Result<Vec<Delivery>, StoreError>;
    /// The tenant's dead letters, most recently failed first.
    async fn list_dead_letters(
        &self,
        tenant: &str,
        page: Page,
    ) -> Result<Vec<Delivery>, StoreError>;
    /// Takes up to `limit` due deliveries of active hooks for one attempt each: counts the attempt and moves
    /// the row's next try to `lease_until`, so a worker that dies mid-attempt leaves it due again. Rows
    /// another worker is taking are skipped, not waited for.
    async fn take_due(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: i64,
    ) -> Result<Vec<TakenDelivery>, StoreError>;
    /// Signalled when deliveries were put back in the outbox (retry-all): the worker looks for due ones.
    fn deliveries_waiting(&self) -> std::sync::Arc<tokio::sync::Notify>;
    /// The deliveries this process's writes wrote, for their first attempt (see `webhooks::fresh`).
    fn fresh_deliveries(&self) -> std::sync::Arc<super::fresh::FreshDeliveries>;
    /// When the next delivery falls due (None when nothing waits).
    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError>;
    /// Records how attempts ended, all in one write; the ids of the deliveries recorded. An attempt that is
    /// no longer its row's latest (its lease ran out and another worker took it again) is not recorded.
    async fn record_attempts(&self, records: &[AttemptRecord]) -> Result<Vec<Uuid>, StoreError>;
    /// The receiver answered 410 Gone: the hook is deactivated.
    async fn deactivate_gone(&self, webhook_id: Uuid, at: Timestamp) -> Result<(), StoreError>;
    /// Takes one of the tenant's dead letters (of an active hook) for an attempt now, its count restarted.
    async fn take_dead_letter(
        &self,
        tenant: &str,
        id: Uuid,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Option<TakenDelivery>, StoreError>;
    /// Puts every dead letter of active hooks, across tenants, back in the outbox with its count restarted;
    /// how many.
    async fn requeue_dead_letters(&self, now: Timestamp) -> Result<i64, StoreError>;
    async fn delivery_figures(&self, since: Timestamp) -> Result<DeliveryFigures, StoreError>;
}
