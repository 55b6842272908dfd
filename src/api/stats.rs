//! `GET /api/v1/stats` (the caller's tenant) and `GET /api/v1/system/health` (every tenant), both admin
//! (docs/api.md §9.3–9.4).

use super::error::Error;
use super::extract::Caller;
use super::AppState;
use crate::auth::limits::hour_start;
use crate::packets::stats::{AgentCount, PoolFigures};
use crate::timestamp::Timestamp;
use axum::extract::State;
use axum::Json;
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(stats))
        .routes(routes!(system_health))
}

fn ago(seconds: i64) -> Timestamp {
    let now = Timestamp::now();
    now.plus_seconds(-seconds).unwrap_or(now)
}

#[derive(Serialize, ToSchema)]
struct TenantStats {
    total_packets: i64,
    packets_by_status: BTreeMap<String, i64>,
    /// By the outcome of their claims (`PASS`, `CAUGHT`, `ERROR`), `none` for packets created without claims.
    packets_by_verification: BTreeMap<String, i64>,
    packets_last_24h: i64,
    avg_claim_time_seconds: Option<f64>,
    hitl_queue_depth: i64,
    /// The tenant's open live connections on this instance (`/ws` and `/events`).
    active_ws_connections: i64,
}

#[utoipa::path(get, path = "/stats", tag = "stats",
    responses((status = 200, description = "The caller's tenant", body = TenantStats)))]
async fn stats(State(state): State<AppState>, caller: Caller) -> Result<Json<TenantStats>, Error> {
    let stats = state
        .store
        .packet_stats(Some(caller.tenant()), ago(24 * 3600))
        .await?;
    Ok(Json(TenantStats {
        hitl_queue_depth: stats.awaiting_human(),
        total_packets: stats.total_packets,
        packets_last_24h: stats.packets_since,
        avg_claim_time_seconds: stats.avg_claim_time_seconds,
        packets_by_status: stats.packets_by_status,
        packets_by_verification: stats.packets_by_verification,
        active_ws_connections: state.live.of_tenant(caller.tenant()) as i64,
    }))
}

#[derive(Serialize, ToSchema)]
struct SystemHealth {
    version: &'static str,
    uptime_seconds: u64,
    database_backend: &'static str,
    total_packets: i64,
    packets_by_status: BTreeMap<String, i64>,
    packets_created_last_1h: i64,
    packets_created_last_24h: i64,
    avg_time_to_claim_seconds: Option<f64>,
    /// Mean seconds from claim to completion.
    avg_time_to_complete_seconds: Option<f64>,
    active_agents: i64,
    total_agents_seen: i64,
    top_agents: Vec<AgentCount>,
    /// Packets nobody has claimed yet (status `created`).
    packets_waiting: i64,
    oldest_waiting_packet_age_seconds: Option<f64>,
    /// Claimed or in progress.
    claimed_not_completed: i64,
    hitl_queue_depth: i64,
    /// The deployment's name (`--environment`).
    environment: String,
    /// Every tenant's, inactive ones included.
    total_webhooks: i64,
    /// Deliveries that reached their receiver in the last hour, and attempts that failed in it.
    recent_deliveries_1h: i64,
    failed_deliveries_1h: i64,
    avg_delivery_latency_ms: Option<f64>,
    db_size_bytes: Option<i64>,
    /// PostgreSQL only.
    connection_pool: Option<PoolFigures>,
    active_api_keys: i64,
    /// Requests in the current clock hour by tenant id, as the rate limiter counts them (empty with
    /// `--no-rate-limits`; the reference names this field per key but keys it by tenant too).
    requests_last_1h_per_key: BTreeMap<String, i64>,
}

#[utoipa::path(get, path = "/system/health", tag = "stats",
    responses((status = 200, description = "Every tenant", body = SystemHealth)))]
async fn system_health(State(state): State<AppState>) -> Result<Json<SystemHealth>, Error> {
    let store = state.store.as_ref();
    let now = Timestamp::now();
    let hour_start = hour_start(now.unix_seconds());
    let (day, hour, figures, deliveries) = tokio::try_join!(
        store.packet_stats(None, ago(24 * 3600)),
        store.packet_stats(None, ago(3600)),
        store.system_figures(hour_start),
        store.delivery_figures(ago(3600)),
    )?;
    Ok(Json(SystemHealth {
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: state.started.elapsed().as_secs(),
        database_backend: store.backend().as_str(),
        packets_waiting: day.waiting(),
        claimed_not_completed: day.claimed_not_completed(),
        oldest_waiting_packet_age_seconds: figures.oldest_waiting_age_seconds(now),
        avg_time_to_complete_seconds: figures.avg_time_to_complete_seconds,
        active_agents: figures.active_agents,
        total_agents_seen: figures.total_agents_seen,
        top_agents: figures.top_agents,
        environment: state.config.environment.clone(),
        total_webhooks: deliveries.webhooks,
        recent_deliveries_1h: deliveries.delivered_last_hour,
        failed_deliveries_1h: deliveries.failed_last_hour,
        avg_delivery_latency_ms: deliveries.avg_delivery_latency_ms,
        db_size_bytes: figures.db_size_bytes,
        connection_pool: figures.connection_pool,
        active_api_keys: figures.active_api_keys,
        requests_last_1h_per_key: figures.requests_this_hour_by_tenant,
        hitl_queue_depth: day.awaiting_human(),
        total_packets: day.total_packets,
        packets_created_last_1h: hour.packets_since,
        packets_created_last_24h: day.packets_since,
        avg_time_to_claim_seconds: day.avg_claim_time_seconds,
        packets_by_status: day.packets_by_status,
    }))
}
