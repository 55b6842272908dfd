//! One proxied exchange as a sequence of phases, after pingora, each a function below in the order they run:
//! find the upstream peer → identify the caller → check trust (the record begins) → build the upstream
//! request → send it → filter the response → stream the body, recording last. A phase either passes the
//! exchange on or ends it with a [`ProxyError`], which says where the failure came from and is answered (and
//! recorded, once the exchange has begun) in one place.

use super::capture::ResponseTee;
use super::destination::{destination, Destination, Leg};
use super::error::ProxyError;
use super::headers;
use super::in_flight::{Begun, InFlight};
use super::Interceptor;
use crate::auth::{ApiKey, Role};
use crate::rules::Rules;
use crate::timestamp::Timestamp;
use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, HOST};
use hyper::{Request, Response, StatusCode};
use std::sync::Arc;
use uuid::Uuid;

pub use super::error::reply;

pub type ProxyBody = Either<ResponseTee, Full<Bytes>>;

/// Who sent the request: the key's tenant owns the record.
#[derive(Clone, Debug)]
pub struct ProxyCaller {
    pub key: ApiKey,
    /// From the proxy credentials' user name, unless `X-HandoffRail-Agent` says otherwise.
    pub agent_id: Option<String>,
    /// SHA-256 of the key presented, so that requests inside a tunnel re-check it (revocation ends them).
    key_hash: String,
}

/// A request on the proxy port (forward or reverse) or inside a tunnel, through every phase.
pub async fn proxy(
    interceptor: Arc<Interceptor>,
    request: Request<Incoming>,
    leg: Leg,
    tunnel_caller: Option<ProxyCaller>,
) -> Response<ProxyBody> {
    match phases(&interceptor, request, leg, tunnel_caller).await {
        Ok(response) => response,
        Err(error) => error.respond(&interceptor).await,
    }
}

async fn phases(
    interceptor: &Interceptor,
    mut request: Request<Incoming>,
    leg: Leg,
    tunnel_caller: Option<ProxyCaller>,
) -> Result<Response<ProxyBody>, ProxyError> {
    let arrived = Timestamp::now();
    let rules = interceptor.rules.current();
    let destination = upstream_peer(&request, &leg, &rules)?;
    let caller =
        request_filter(interceptor, &mut request, &leg, &destination, tunnel_caller).await?;
    let exchange = trust(
        interceptor,
        &rules,
        &caller,
        &request,
        &destination,
        arrived,
    )
    .await?;
    let (upstream_request, exchange) = upstream_request(request, &destination, exchange);
    let (response, exchange) = send(interceptor, upstream_request, exchange).await?;
    Ok(response_filter(interceptor, response, exchange))
}

/// Phase 1, upstream peer: where the request goes (its absolute URL, a reverse route, or the tunnel's host).
fn upstream_peer(
    request: &Request<Incoming>,
    leg: &Leg,
    rules: &Rules,
) -> Result<Destination, ProxyError> {
    destination(request.uri(), leg, &rules.routes)
        .map_err(|error| ProxyError::downstream(StatusCode::NOT_FOUND, error.to_string()))
}

/// Phase 2, request filter: who is calling. A request inside a tunnel is the tunnel's caller's, checked
/// again; any other presents its own key.
async fn request_filter(
    interceptor: &Interceptor,
    request: &mut Request<Incoming>,
    leg: &Leg,
    destination: &Destination,
    tunnel_caller: Option<ProxyCaller>,
) -> Result<ProxyCaller, ProxyError> {
    match (tunnel_caller, leg) {
        (Some(caller), Leg::Tunnel(authority)) => {
            tunnel_request_caller(interceptor, request, authority, caller).await
        }
        (Some(caller), Leg::Plain) => Ok(caller),
        (None, _) => identify_caller(interceptor, request, destination.route.is_some()).await,
    }
}

/// The caller, from `Proxy-Authorization` (forward and reverse) or `X-API-Key` (reverse routes only; it is
/// ours then, so it is not forwarded). Also how a CONNECT is authorised.
pub async fn identify_caller(
    interceptor: &Interceptor,
    request: &mut Request<Incoming>,
    reverse: bool,
) -> Result<ProxyCaller, ProxyError> {
    let unknown_status = if reverse {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::PROXY_AUTHENTICATION_REQUIRED
    };
    let (agent_id, presented) =
        match headers::proxy_credentials(request.headers()) {
            Some((agent, key)) => (Some(agent).filter(|agent| !agent.is_empty()), key),
            None if reverse => {
                let key = request
                    .headers()
                    .get("x-api-key")
                    .and_then(|value| value.to_str().ok())
                    .map(|value| value.trim().to_string())
                    .filter(|value| !value.is_empty())
                    .ok_or_else(|| {
                        ProxyError::downstream(
                            unknown_status,
                            "Missing X-API-Key header or proxy credentials",
                        )
                    })?;
                request.headers_mut().remove("x-api-key");
                (None, key)
            }
            None => return Err(ProxyError::downstream(
                unknown_status,
                "Proxy credentials required: Proxy-Authorization: Basic base64(AGENT_ID:API_KEY)",
            )),
        };
    let key_hash = crate::auth::hash_key(&presented);
    let key = authorize(interceptor, &key_hash, unknown_status).await?;
    Ok(ProxyCaller {
        key,
        agent_id,
        key_hash,
    })
}

/// The key behind `key_hash`, if it may record traffic now: live, and agent or above.
async fn authorize(
    interceptor: &Interceptor,
    key_hash: &str,
    unknown_status: StatusCode,
) -> Result<ApiKey, ProxyError> {
    let key = interceptor
        .keys
        .find_hashed(interceptor.store.as_ref(), key_hash)
        .await
        .map_err(|error| ProxyError::database("key lookup", error))?
        .ok_or_else(|| ProxyError::downstream(unknown_status, "Invalid API key"))?;
    if key.revoked {
        return Err(ProxyError::downstream(
            StatusCode::FORBIDDEN,
            "API key has been revoked",
        ));
    }
    if !key.role.grants(Role::Agent) {
        return Err(ProxyError::downstream(
            StatusCode::FORBIDDEN,
            "Recording traffic needs an agent, writer or admin key",
        ));
    }
    Ok(key)
}

/// A request inside a tunnel is sent as the tunnel's caller, whose key is checked again (a revoked key's
/// tunnel is answered 403 and closed) and whose `Host` must name the tunnel's authority (else 421: the
/// record would claim one host while another answered).
async fn tunnel_request_caller(
    interceptor: &Interceptor,
    request: &Request<Incoming>,
    authority: &str,
    caller: ProxyCaller,
) -> Result<ProxyCaller, ProxyError> {
    let key = authorize(interceptor, &caller.key_hash, StatusCode::FORBIDDEN)
        .await
        .map_err(ProxyError::closing)?;
    let named = request
        .headers()
        .get(HOST)
        .and_then(|host| host.to_str().ok())
        .or_else(|| {
            request
                .uri()
                .authority()
                .map(|authority| authority.as_str())
        });
    if let Some(named) = named {
        if !headers::same_authority(named, authority, 443) {
            return Err(ProxyError::downstream(
                StatusCode::MISDIRECTED_REQUEST,
                format!("Host {named} is not this tunnel's authority {authority}"),
            ));
        }
    }
    Ok(ProxyCaller { key, ..caller })
}

/// Phase 3, trust: whether the destination is a trusted endpoint of the caller's tenant. The exchange's
/// record begins here; with `--block-untrusted` an untrusted one ends here, recorded.
async fn trust(
    interceptor: &Interceptor,
    rules: &Arc<Rules>,
    caller: &ProxyCaller,
    request: &Request<Incoming>,
    destination: &Destination,
    arrived: Timestamp,
) -> Result<InFlight, ProxyError> {
    let method = request.method().as_str();
    let trusted = interceptor
        .trust
        .trust_list(interceptor.store.as_ref(), &caller.key.tenant_id, rules)
        .await
        .map_err(|error| ProxyError::database("reading trusted endpoints", error))?
        .covers_url(method, &destination.url);
    let url = destination.url.as_str();
    let exchange = InFlight::begin(Begun {
        id: Uuid::now_v7(),
        caller,
        tags: &headers::tags(request.headers()),
        method,
        url,
        trusted,
        arrived,
        body_limit: interceptor.options.record_body_limit,
    });
    if interceptor.options.block_untrusted && !trusted {
        return Err(ProxyError::refused_recorded(
            exchange,
            StatusCode::FORBIDDEN,
            format!("{method} {url} is not a trusted endpoint"),
            "blocked: not a trusted endpoint (--block-untrusted)".into(),
        ));
    }
    Ok(exchange)
}

/// Phase 4, upstream request: same method, path, query, headers (less hop-by-hop and control headers) and
/// body; HTTP/1.1; `Host` is always the destination's authority (RFC 9112 §3.2.2: a proxy replaces the `Host`
/// of an absolute-form request), so that the host recorded is the host that answered.
fn upstream_request(
    request: Request<Incoming>,
    destination: &Destination,
    mut exchange: InFlight,
) -> (Request<super::capture::RequestTee>, InFlight) {
    let (mut parts, body) = request.into_parts();
    headers::strip_for_upstream(&mut parts.headers);
    if let Ok(host) = HeaderValue::from_str(&headers::host_of(&destination.url)) {
        parts.headers.insert(HOST, host);
    }
    parts.uri = destination.uri.clone();
    parts.version = hyper::Version::HTTP_11;
    exchange.forwarded(&parts.headers);
    let body = exchange.request_tee(body);
    (Request::from_parts(parts, body), exchange)
}

/// Phase 5, send: the upstream's response head, within `--upstream-timeout`; 502 when it fails, 504 when it
/// does not answer in time, both recorded.
async fn send(
    interceptor: &Interceptor,
    request: Request<super::capture::RequestTee>,
    exchange: InFlight,
) -> Result<(Response<Incoming>, InFlight), ProxyError> {
    let timeout = interceptor.options.upstream_timeout;
    match tokio::time::timeout(timeout, interceptor.client.request(request)).await {
        Ok(Ok(response)) => Ok((response, exchange)),
        Ok(Err(error)) => Err(ProxyError::upstream(
            exchange,
            StatusCode::BAD_GATEWAY,
            crate::describe_error(&error),
        )),
        Err(_) => Err(ProxyError::upstream(
            exchange,
            StatusCode::GATEWAY_TIMEOUT,
            format!("upstream did not answer within {timeout:?} (--upstream-timeout)"),
        )),
    }
}

/// Phases 6 and 7, response filter and body: the upstream's headers less hop-by-hop ones, plus the record's
/// id; the body streams through a tee that finishes the record at its end and holds the end back until the
/// record is durable.
fn response_filter(
    interceptor: &Interceptor,
    response: Response<Incoming>,
    mut exchange: InFlight,
) -> Response<ProxyBody> {
    let (mut parts, body) = response.into_parts();
    headers::strip_for_client(&mut parts.headers);
    exchange.answered(parts.status, &parts.headers);
    parts
        .headers
        .insert(headers::RECORD, headers::record_id_value(exchange.id()));
    let pending = interceptor.recorder.pending(exchange);
    let tee = ResponseTee::new(body, interceptor.options.record_body_limit, pending);
    Response::from_parts(parts, Either::Left(tee))
}
