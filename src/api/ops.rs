//! Operational endpoints at the root: `/health`, `/ready`, `/metrics`, `/openapi.json` (no key needed).

use super::AppState;
use crate::store::StoreError;
use crate::timestamp::Timestamp;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use std::sync::LazyLock;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(ready))
        .routes(routes!(metrics))
        .routes(routes!(openapi_json))
}

/// `/health`: the process is up.
#[derive(Serialize, ToSchema)]
struct Health {
    /// `ok`.
    #[schema(value_type = String, example = "ok")]
    status: &'static str,
    #[schema(value_type = String, example = "handoffrail")]
    service: &'static str,
}

/// `/ready`: whether the database answers.
#[derive(Serialize, ToSchema)]
struct Readiness {
    /// `ready` or `not_ready`.
    #[schema(value_type = String, example = "ready")]
    status: &'static str,
    #[schema(value_type = String, example = "handoffrail")]
    service: &'static str,
    /// The database answered within 2 s.
    db: bool,
}

const SERVICE: &str = "handoffrail";

#[utoipa::path(get, path = "/health", tag = "operations", security(()),
    responses((status = 200, description = "The process is up", body = Health)))]
async fn health() -> impl IntoResponse {
    Json(Health {
        status: "ok",
        service: SERVICE,
    })
}

#[utoipa::path(get, path = "/ready", tag = "operations", security(()),
    responses((status = 200, description = "The database answers", body = Readiness),
        (status = 503, description = "The database does not answer", body = Readiness)))]
async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    // A readiness probe must answer promptly even when the pool is waiting for a dead database.
    let ping = tokio::time::timeout(std::time::Duration::from_secs(2), state.store.ping()).await;
    match ping.unwrap_or_else(|_| Err(StoreError::timed_out())) {
        Ok(()) => (
            StatusCode::OK,
            Json(Readiness {
                status: "ready",
                service: SERVICE,
                db: true,
            }),
        ),
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(Readiness {
                    status: "not_ready",
                    service: SERVICE,
                    db: false,
                }),
            )
        }
    }
}

#[utoipa::path(get, path = "/metrics", tag = "operations", security(()),
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut text = state.metrics.render();
    // The outbox figures come from the database; while it does not answer they are left out, the rest is not.
    let since = Timestamp::now()
        .plus_seconds(-3600)
        .unwrap_or_else(Timestamp::now);
    let figures = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        state.store.delivery_figures(since),
    )
    .await
    .ok()
    .and_then(Result::ok);
    super::metrics::render_webhooks(&mut text, &state.webhooks.tally, figures.as_ref());
    super::metrics::render_live(&mut text, state.live.total());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}

/// This document: OpenAPI 3.1, generated from the routes the router serves (docs/api.md decision 11).
#[utoipa::path(get, path = "/openapi.json", tag = "operations", security(()),
    responses((status = 200, description = "This OpenAPI document", body = super::openapi::OpenApiDocument)))]
async fn openapi_json() -> impl IntoResponse {
    static DOCUMENT: LazyLock<String> = LazyLock::new(|| super::openapi::document().to_string());
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT.as_str(),
    )
}
