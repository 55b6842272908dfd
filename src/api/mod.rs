//! The HTTP API: routes, extractors and the JSON error type. No SQL and no business rules live here;
//! handlers translate between HTTP and the domain modules.

mod audit;
mod batch;
mod dashboard;
pub mod error;
mod evaluations;
pub mod extract;
mod gate;
mod hooks;
mod keys;
pub(crate) mod live;
pub mod metrics;
mod openapi;
mod ops;
mod packets;
mod paging;
mod records;
mod schemas;
mod stats;
mod storable;
mod tenants;
mod trust;

use crate::auth::KeyCache;
use crate::config::ServeConfig;
use crate::records::RecordKey;
use crate::rules::LiveRules;
use crate::store::Store;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use error::Error;
use extract::Caller;
use metrics::Metrics;
use serde_json::json;
use std::any::Any;
use std::sync::Arc;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::CorsLayer;
use utoipa_axum::router::OpenApiRouter;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub config: Arc<ServeConfig>,
    pub metrics: Arc<Metrics>,
    pub keys: Arc<KeyCache>,
    /// Seals records and verifies them on read.
    pub record_key: Arc<RecordKey>,
    /// Rules from `--rules`, loaded at start and on SIGHUP; take one `current()` snapshot per request.
    pub rules: Arc<LiveRules>,
    /// The proxy's MITM CA (`GET /api/v1/ca.pem`).
    pub ca: Arc<crate::intercept::ca::CertificateAuthority>,
    /// Rate windows and daily caps (docs/api.md §5.4).
    pub limiter: Arc<crate::auth::limits::Limiter>,
    /// Compiled validators of registered schemas (`schema_id` on create, chain and batch).
    pub schemas: Arc<crate::packets::schemas::SchemaRegistry>,
    /// Evaluation budgets and the slots that bound how many run at once.
    pub evaluations: Arc<crate::evaluations::Capacity>,
    /// Whether the database answers (a probe pings it every second): requests fail fast while it does not.
    pub database: Arc<crate::store::DatabaseHealth>,
    /// When this process started serving (`uptime_seconds`).
    pub started: std::time::Instant,
    /// Open live connections (`/events`, `/ws`) and their caps.
    pub live: Arc<crate::events::live::Connections>,
    /// Webhook destination checks and delivery attempts (replay, retry-all; the worker shares it).
    pub webhooks: Arc<crate::webhooks::dispatch::Dispatcher>,
}

/// Every route under `/api/v1`, each with its OpenAPI operation.
pub(crate) fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(packets::routes())
        .merge(batch::routes())
        .merge(keys::routes())
        .merge(records::routes())
        .merge(evaluations::routes())
        .merge(trust::routes())
        .merge(tenants::routes())
        .merge(schemas::routes())
        .merge(audit::routes())
        .merge(stats::routes())
        .merge(hooks::routes())
}

/// The routes at the root, outside `/api/v1`: operations and the live streams (each checks its own key, if any).
pub(crate) fn root_routes() -> OpenApiRouter<AppState> {
    ops::routes().merge(live::routes())
}

pub use openapi::document as openapi_document;

/// The whole HTTP application: `/api/v1/*` behind API keys, operational routes at the root, the dashboard
/// behind its sessions.
pub fn router(state: AppState) -> Router {
    let api = api_routes().route_layer(middleware::from_fn_with_state(state.clone(), authenticate));
    let (routes, _) = OpenApiRouter::new()
        .nest("/api/v1", api)
        .merge(root_routes())
        .split_for_parts();
    routes
        .merge(dashboard::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), gate::gate))
        .layer(middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::track,
        ))
        .layer(CorsLayer::very_permissive())
        .layer(CatchPanicLayer::custom(panic_response))
        .with_state(state)
}

/// Resolves `X-API-Key` to a live key and hands it to the handler as [`Caller`]: 401 when missing or
/// unknown, 403 when revoked (docs/api.md §5.1). The gate has already looked the key up.
async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, Error> {
    let presented = match request.extensions_mut().remove::<gate::PresentedKey>() {
        Some(presented) => presented,
        None => {
            let header = gate::api_key_header(request.headers());
            let key = match &header {
                Some(text) => state.keys.find(state.store.as_ref(), text).await?,
                None => None,
            };
            gate::PresentedKey { header, key }
        }
    };
    if presented.header.is_none() {
        return Err(Error::Unauthorized("Missing X-API-Key header"));
    }
    let key = presented
        .key
        .ok_or(Error::Unauthorized("Invalid API key"))?;
    if key.revoked {
        return Err(Error::Forbidden("API key has been revoked".into()));
    }
    request.extensions_mut().insert(Caller(key));
    Ok(next.run(request).await)
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({"detail": "Not Found"}))).into_response()
}

async fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        Json(json!({"detail": "Method Not Allowed"})),
    )
        .into_response()
}

fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    tracing::error!(panic = message, "handler panicked");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({"detail": "Internal server error"})),
    )
        .into_response()
}
