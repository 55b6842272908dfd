//! What packets need stored: the packets with their revisions, their history, the schema registry and the
//! figures of `/stats`. Implemented by `crate::store`.

use super::history::{AuditQuery, NewEvent, PacketEvent};
use super::listing::{PacketPage, PacketQuery, SearchQuery};
use super::model::Packet;
use super::schemas::Schema;
use super::stats::{PacketStats, SystemFigures};
use crate::announce::{Announcement, LiveNotice};
use crate::evaluations::NewEvaluation;
use crate::paging::Page;
use crate::persistence::StoreError;
use crate::timestamp::Timestamp;
use async_trait::async_trait;
use uuid::Uuid;

/// A packet with the revision its conditional update must name.
#[derive(Clone, Debug)]
pub struct StoredPacket {
    pub packet: Packet,
    pub revision: i64,
    /// When the expiry task expires it for an unanswered checkpoint (docs/api.md decision 7).
    pub hitl_deadline: Option<Timestamp>,
}

#[async_trait]
pub trait PacketStore: Send + Sync {
    /// Inserts a new packet with its history events, the evaluation of its claims (if it came with claims;
    /// its announcement is part of `announcement`) and, for each outbox event of `announcement`, one delivery
    /// per active hook of the tenant that asked for it, atomically; then publishes its live events.
    async fn insert_packet(
        &self,
        tenant: &str,
        packet: &Packet,
        events: &[NewEvent],
        announcement: &Announcement,
        hitl_deadline: Option<Timestamp>,
        evaluation: Option<&NewEvaluation>,
    ) -> Result<(), StoreError>;
    async fn get_packet(&self, tenant: &str, id: Uuid) -> Result<Option<StoredPacket>, StoreError>;
    /// Writes `packet` (with `events` and `announcement` as on insert) only if its stored revision is still
    /// `expected_revision`; false when another writer got there first (and then nothing is written).
    async fn replace_packet(
        &self,
        tenant: &str,
        expected_revision: i64,
        packet: &Packet,
        events: &[NewEvent],
        announcement: &Announcement,
        hitl_deadline: Option<Timestamp>,
    ) -> Result<bool, StoreError>;
    async fn list_packets(
        &self,
        tenant: &str,
        query: &PacketQuery,
    ) -> Result<PacketPage, StoreError>;
    /// Full-text search over summaries and context, most relevant first (an exact summary match before
    /// anything else); `total` counts every hit.
    async fn search_packets(
        &self,
        tenant: &str,
        query: &SearchQuery,
    ) -> Result<PacketPage, StoreError>;
    /// Packets awaiting a human, oldest first.
    async fn list_awaiting(&self, tenant: &str, page: Page) -> Result<PacketPage, StoreError>;
    /// When the next packet falls due for expiry: the earliest checkpoint deadline, or the earliest live
    /// packet's creation plus `ttl`, whichever comes first (None when no packet is live).
    async fn next_expiry(&self, ttl: std::time::Duration) -> Result<Option<Timestamp>, StoreError>;
    /// Signalled when a write in this process gave a packet a checkpoint deadline (the expiry worker then
    /// looks again, since the new deadline may come before the one it sleeps towards).
    fn deadline_set(&self) -> std::sync::Arc<tokio::sync::Notify>;
    /// Live events of every tenant as they are committed (on PostgreSQL, by any instance on the database).
    /// A receiver that falls too far behind gets `Lagged`.
    fn live_events(&self) -> tokio::sync::broadcast::Receiver<std::sync::Arc<LiveNotice>>;
    /// (tenant, id) of live packets created before `ttl_cutoff` or waiting past their deadline at `now`.
    async fn due_for_expiry(
        &self,
        ttl_cutoff: Timestamp,
        now: Timestamp,
        limit: i64,
    ) -> Result<Vec<(String, Uuid)>, StoreError>;
}

#[async_trait]
pub trait HistoryStore: Send + Sync {
    /// The tenant's history events matching `query`, newest first, and how many match in all.
    async fn list_audit(
        &self,
        tenant: &str,
        query: &AuditQuery,
    ) -> Result<(Vec<PacketEvent>, i64), StoreError>;
    /// History of one packet, oldest first (empty when the packet is not the tenant's).
    async fn packet_history(&self, tenant: &str, id: Uuid) -> Result<Vec<PacketEvent>, StoreError>;
}

#[async_trait]
pub trait SchemaStore: Send + Sync {
    /// Registers a schema for its tenant.
    async fn insert_schema(&self, schema: &Schema) -> Result<(), StoreError>;
    /// The tenant's schema `id`.
    async fn get_schema(&self, tenant: &str, id: Uuid) -> Result<Option<Schema>, StoreError>;
    /// The tenant's schemas, newest first, and how many it has.
    async fn list_schemas(
        &self,
        tenant: &str,
        page: Page,
    ) -> Result<(Vec<Schema>, i64), StoreError>;
}

#[async_trait]
pub trait StatsStore: Send + Sync {
    /// Counts over one tenant's packets, or every tenant's when `tenant` is None; `packets_since` counts
    /// those created at or after `since`.
    async fn packet_stats(
        &self,
        tenant: Option<&str>,
        since: Timestamp,
    ) -> Result<PacketStats, StoreError>;
    /// Figures across every tenant for `/system/health`; `hour_start` picks the rate window counted.
    async fn system_figures(&self, hour_start: i64) -> Result<SystemFigures, StoreError>;
}
