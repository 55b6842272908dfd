//! Counts over a tenant's packets (or all tenants') for `GET /stats` and `GET /system/health` (docs/api.md §9.3–9.4).

use super::model::Status;
use crate::timestamp::Timestamp;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PacketStats {
    pub total_packets: i64,
    pub packets_by_status: BTreeMap<String, i64>,
    /// By the outcome of their claims (`PASS`, `CAUGHT`, `ERROR`), `none` for packets without claims.
    pub packets_by_verification: BTreeMap<String, i64>,
    /// Created at or after the `since` instant the store was asked about.
    pub packets_since: i64,
    /// Mean of `claimed_at − created_at` over packets that were claimed (claimed, in progress, completed).
    pub avg_claim_time_seconds: Option<f64>,
}

impl PacketStats {
    /// From counts by status and verification outcome (None: no claims).
    pub fn new(
        counts: Vec<(String, Option<String>, i64)>,
        packets_since: i64,
        avg_claim_time_seconds: Option<f64>,
    ) -> Self {
        let mut packets_by_status = BTreeMap::new();
        let mut packets_by_verification = BTreeMap::new();
        for (status, verification, count) in &counts {
            *packets_by_status.entry(status.clone()).or_insert(0) += count;
            let outcome = verification.clone().unwrap_or_else(|| "none".into());
            *packets_by_verification.entry(outcome).or_insert(0) += count;
        }
        PacketStats {
            total_packets: counts.iter().map(|(_, _, count)| count).sum(),
            packets_by_status,
            packets_by_verification,
            packets_since,
            avg_claim_time_seconds,
        }
    }

    pub fn in_status(&self, status: Status) -> i64 {
        self.packets_by_status
            .get(status.as_str())
            .copied()
            .unwrap_or(0)
    }

    /// Packets nobody has claimed yet.
    pub fn waiting(&self) -> i64 {
        self.in_status(Status::Created)
    }

    /// Claimed or in progress.
    pub fn claimed_not_completed(&self) -> i64 {
        self.in_status(Status::Claimed) + self.in_status(Status::InProgress)
    }

    /// The human-in-the-loop queue.
    pub fn awaiting_human(&self) -> i64 {
        self.in_status(Status::AwaitingHuman)
    }
}

/// One agent and how many packets name it (as source or target).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AgentCount {
    pub agent_id: String,
    pub packet_count: i64,
}

/// The store's figures across every tenant for `GET /system/health` (docs/api.md §9.4), beyond [`PacketStats`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SystemFigures {
    /// Mean of completion time − `claimed_at` over completed packets.
    pub avg_time_to_complete_seconds: Option<f64>,
    /// Distinct target agents of packets claimed, in progress or awaiting a human.
    pub active_agents: i64,
    /// Distinct agent ids that appear as a source or a target.
    pub total_agents_seen: i64,
    /// The five agents named by the most packets, most first.
    pub top_agents: Vec<AgentCount>,
    /// When the oldest packet nobody has claimed yet was created.
    pub oldest_waiting_created_at: Option<Timestamp>,
    /// Keys not revoked, every tenant.
    pub active_api_keys: i64,
    /// Size of the database on disk.
    pub db_size_bytes: Option<i64>,
    /// Connections open and idle in the pool (PostgreSQL; the SQLite store has fixed pools).
    pub connection_pool: Option<PoolFigures>,
    /// Requests each tenant made in the current clock hour, as the rate limiter counted them.
    pub requests_this_hour_by_tenant: BTreeMap<String, i64>,
}

impl SystemFigures {
    /// Seconds the oldest unclaimed packet has waited at `now`.
    pub fn oldest_waiting_age_seconds(&self, now: Timestamp) -> Option<f64> {
        self.oldest_waiting_created_at
            .map(|created| (now.micros() - created.micros()).max(0) as f64 / 1e6)
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PoolFigures {
    pub size: u32,
    pub idle: u32,
    pub max: u32,
}
