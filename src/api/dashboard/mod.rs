//! The dashboard at `/dashboard` (docs/dashboard.md): server-rendered pages over the same domain functions and
//! tenant scoping as the API, for a browser signed in with an API key. Every page and form needs a session;
//! without one a page redirects to the sign-in form and shows nothing.

mod evaluations;
mod handoffs;
mod html;
mod live;
mod queue;
mod records;
mod session;

pub(super) use session::signed_in;

use super::AppState;
use crate::persistence::StoreError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

/// Whether `path` is the dashboard's (its requests are counted against the session's key).
pub(super) fn is_dashboard(path: &str) -> bool {
    path == "/dashboard" || path.starts_with("/dashboard/")
}

/// The dashboard's routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/dashboard",
            get(|| async { Redirect::to("/dashboard/handoffs") }),
        )
        .route(
            "/dashboard/sign-in",
            get(session::sign_in_form).post(session::sign_in),
        )
        .route("/dashboard/sign-out", post(session::sign_out))
        .route("/dashboard/handoffs", get(handoffs::list))
        .route("/dashboard/handoffs/{id}", get(handoffs::packet))
        .route("/dashboard/handoffs/{id}/respond", post(queue::respond))
        .route("/dashboard/queue", get(queue::list))
        .route("/dashboard/events", get(live::events))
        .route("/dashboard/evaluations", get(evaluations::list))
        .route("/dashboard/evaluations/{id}", get(evaluations::evaluation))
        .route("/dashboard/records", get(records::list))
        .route("/dashboard/records/{id}", get(records::record))
        .route("/dashboard/records/{id}/har", get(records::har))
        .layer(axum::middleware::map_response(protect))
}

/// What every dashboard answer tells the browser: no framing by other sites, no script but the page's own, no
/// other hosts, no caching of tenant data, no sniffing, no referrer beyond this origin.
async fn protect(mut response: Response) -> Response {
    static POLICY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "default-src 'none'; style-src 'unsafe-inline'; script-src {}; connect-src 'self'; img-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            live::refresher_source()
        )
    });
    let headers = response.headers_mut();
    if let Ok(policy) = HeaderValue::from_str(&POLICY) {
        headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    for (name, value) in [
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    // The event stream says `no-cache` itself.
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// The id in a page's path; anything that is not one is a page not found.
fn page_id(text: &str) -> Result<uuid::Uuid, DashboardError> {
    uuid::Uuid::parse_str(text).map_err(|_| DashboardError::NotFound)
}

/// Why a dashboard page could not be shown; each is a page of its own with its status.
#[derive(Debug)]
pub enum DashboardError {
    /// 404: unknown here, another tenant's included.
    NotFound,
    /// 403: a form without its CSRF token, or a role that falls short.
    Forbidden(&'static str),
    /// 409: the handoff is no longer in the state the form was for.
    Conflict(&'static str),
    /// 422: a form whose fields cannot be used.
    Invalid(&'static str),
    Store(StoreError),
    /// A failure that is a bug: logged, shown as 500.
    Internal(String),
}

impl From<StoreError> for DashboardError {
    fn from(error: StoreError) -> Self {
        DashboardError::Store(error)
    }
}

impl IntoResponse for DashboardError {
    fn into_response(self) -> Response {
        let (status, text) = match &self {
            DashboardError::NotFound => (StatusCode::NOT_FOUND, "Not found."),
            DashboardError::Forbidden(why) => (StatusCode::FORBIDDEN, *why),
            DashboardError::Conflict(why) => (StatusCode::CONFLICT, *why),
            DashboardError::Invalid(why) => (StatusCode::UNPROCESSABLE_ENTITY, *why),
            DashboardError::Internal(error) => {
                tracing::error!(%error, "dashboard page failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong.")
            }
            DashboardError::Store(error) if error.is_unavailable() => (
                StatusCode::SERVICE_UNAVAILABLE,
                "The database is unavailable; retry shortly.",
            ),
            DashboardError::Store(error) => {
                tracing::error!(%error, "dashboard page failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong.")
            }
        };
        let body = format!(
            "<p>{}</p><p><a href=\"/dashboard/handoffs\">Back to the handoffs</a></p>",
            html::escape(text)
        );
        (status, Html(html::page(text, None, &body))).into_response()
    }
}
