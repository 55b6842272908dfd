//! The gate in front of every route that is not operational (docs/api.md §0 "middleware order": RBAC, then the
//! rate limiter, then the routes).
//!
//! RBAC decides from the method, the path and the presented key's role (docs/api.md §5.3): a valid key whose role
//! falls short gets 403 here, uncounted and without rate-limit headers. A request without a valid key
//! passes on and is answered 401/403 by authentication. Everything that passes RBAC is counted
//! (docs/api.md §5.4: per key — a dashboard page's session counts as its key — or per client address without a valid key) and carries the `X-RateLimit-*` headers,
//! whatever its route answers; over a limit it gets 429 with `Retry-After`.

use super::error::Error;
use super::AppState;
use crate::auth::limits::{Quota, Subject};
use crate::auth::rbac::{self, Requirement};
use crate::auth::{ApiKey, Role};
use crate::timestamp::Timestamp;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// The key named by `X-API-Key`, looked up once by the gate for authentication to use.
#[derive(Clone, Debug)]
pub struct PresentedKey {
    /// What the header held (trimmed); `None` without the header.
    pub header: Option<String>,
    /// The stored key it names, revoked or not; `None` when unknown.
    pub key: Option<ApiKey>,
}

/// `X-API-Key`, trimmed, when present and not empty.
pub fn api_key_header(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-api-key")
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .map(str::to_string)
}

pub async fn gate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let requirement = rbac::requirement(request.method().as_str(), request.uri().path());
    if requirement != Requirement::Exempt && !state.database.is_up() {
        let mut refusal = (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"detail": "The database is unavailable; retry shortly"})),
        )
            .into_response();
        refusal
            .headers_mut()
            .insert("retry-after", HeaderValue::from_static("1"));
        return refusal;
    }
    let required = match requirement {
        Requirement::Exempt => return next.run(request).await,
        Requirement::Role(role) => role,
        Requirement::System => Role::Admin,
    };
    let header = api_key_header(request.headers());
    // A dashboard page's session, found here so that the request counts against its key.
    let mut visit = None;
    let key = match &header {
        Some(presented) => match state.keys.find(state.store.as_ref(), presented).await {
            Ok(key) => key,
            Err(error) => return Error::from(error).into_response(),
        },
        None if super::dashboard::is_dashboard(request.uri().path()) => {
            match super::dashboard::signed_in(&state, request.headers()).await {
                Ok(found) => visit = found,
                Err(error) => return Error::from(error).into_response(),
            }
            None
        }
        None => None,
    };
    let valid = key.as_ref().filter(|key| !key.revoked);
    if let Some(key) = valid {
        if !key.role.grants(required) {
            return Error::Forbidden(rbac::denial(required, key.role)).into_response();
        }
        if requirement == Requirement::System && !key.system {
            return Error::Forbidden(rbac::SYSTEM_DENIAL.to_string()).into_response();
        }
    }
    let subject = match (valid, &visit) {
        (Some(key), _) => Subject::Key(key),
        (None, Some(signed_in)) => Subject::Key(&signed_in.key),
        (None, None) => Subject::Anonymous(client_address(&request)),
    };
    let quota = match state
        .limiter
        .admit(state.store.as_ref(), subject, Timestamp::now())
        .await
    {
        Ok(quota) => quota,
        Err(error) => return Error::from(error).into_response(),
    };
    if let Some(quota) = quota.filter(Quota::refused) {
        let mut response = (
            StatusCode::TOO_MANY_REQUESTS,
            Json(json!({"detail": "Rate limit exceeded", "field": "rate_limit"})),
        )
            .into_response();
        write_headers(response.headers_mut(), &quota);
        return response;
    }
    request
        .extensions_mut()
        .insert(PresentedKey { header, key });
    if let Some(signed_in) = visit {
        request.extensions_mut().insert(signed_in);
    }
    let mut response = next.run(request).await;
    if let Some(quota) = quota {
        write_headers(response.headers_mut(), &quota);
    }
    response
}

/// The peer's address (the server is run with connect info; a router driven without it counts every
/// anonymous caller as one).
fn client_address(request: &Request) -> IpAddr {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip())
}

fn write_headers(headers: &mut HeaderMap, quota: &Quota) {
    let mut put = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    put("x-ratelimit-limit", quota.limit.to_string());
    put("x-ratelimit-remaining", quota.remaining.to_string());
    put("x-ratelimit-reset", quota.reset.to_string());
    put("x-ratelimit-tier", quota.tier.as_str().to_string());
    if let Some(seconds) = quota.retry_after {
        put("retry-after", seconds.to_string());
    }
}
