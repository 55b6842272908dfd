//! Counts over a tenant's packets (or all tenants') for `GET /stats` and `GET /system/health` (spec §9.3–9.4).

use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PacketStats {
    pub total_packets: i64,
    pub packets_by_status: BTreeMap<String, i64>,
    /// Created at or after the `since` instant the store was asked about.
    pub packets_since: i64,
    /// Mean of `claimed_at − created_at` over packets that were claimed (claimed, in progress, completed).
    pub avg_claim_time_seconds: Option<f64>,
}

impl PacketStats {
    pub fn new(
        counts_by_status: Vec<(String, i64)>,
        packets_since: i64,
        avg_claim_time_seconds: Option<f64>,
    ) -> Self {
        PacketStats {
            total_packets: counts_by_status.iter().map(|(_, count)| count).sum(),
            packets_by_status: counts_by_status.into_iter().collect(),
            packets_since,
            avg_claim_time_seconds,
        }
    }

    pub fn in_status(&self, status: &str) -> i64 {
        self.packets_by_status.get(status).copied().unwrap_or(0)
    }
}
