//! Operational endpoints at the root: `/health`, `/ready`, `/metrics` (no key needed).

use super::AppState;
use crate::store::StoreError;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
}

async fn health() -> impl IntoResponse {
    Json(json!({"status": "ok", "service": "handoffrail"}))
}

async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    // A readiness probe must answer promptly even when the pool is waiting for a dead database.
    let ping = tokio::time::timeout(std::time::Duration::from_secs(2), state.store.ping()).await;
    match ping.unwrap_or_else(|_| Err(StoreError::Timeout)) {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({"status": "ready", "service": "handoffrail", "db": true})),
        ),
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "not_ready", "service": "handoffrail", "db": false})),
            )
        }
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
