//! One proxied exchange as a sequence of phases, after pingora: identify the caller → find the upstream →
//! check trust → build the upstream request → send it → filter the response → stream the body, recording
//! last. Each phase either passes the exchange on or ends it with a response of its own; failures say where
//! they came from (downstream, upstream, internal) and are recorded like any other exchange.

use super::capture::{self, Capture, RequestTee, ResponseTee, SharedCapture};
use super::destination::{destination, Destination, Leg};
use super::headers::{self, Tags};
use super::recorder::Durable;
use super::Interceptor;
use crate::auth::{ApiKey, Role};
use crate::records::{Provenance, Record, Timings};
use crate::timestamp::Timestamp;
use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, HOST};
use hyper::{Request, Response, StatusCode};
use serde_json::json;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

pub type ProxyBody = Either<ResponseTee, Full<Bytes>>;

/// Who sent the request: the key's tenant owns the record.
#[derive(Clone, Debug)]
pub struct Caller {
    pub key: ApiKey,
    /// From the proxy credentials' user name, unless `X-HandoffRail-Agent` says otherwise.
    pub agent_id: Option<String>,
    /// SHA-256 of the key presented, so that requests inside a tunnel re-check it (revocation ends them).
    key_hash: String,
}

/// A response the proxy makes itself.
pub fn reply(status: StatusCode, detail: &str) -> Response<ProxyBody> {
    let body = json!({ "detail": detail }).to_string();
    let mut response = Response::new(Either::Right(Full::new(Bytes::from(body))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn with_record_id(mut response: Response<ProxyBody>, id: Uuid) -> Response<ProxyBody> {
    response
        .headers_mut()
        .insert(headers::RECORD, headers::record_id_value(id));
    response
}

/// Phase 1, request filter: the caller, from `Proxy-Authorization` (forward and reverse) or `X-API-Key`
/// (reverse routes only; it is ours then, so it is not forwarded).
pub async fn identify_caller(
    interceptor: &Interceptor,
    request: &mut Request<Incoming>,
    reverse: bool,
) -> Result<Caller, Response<ProxyBody>> {
    let refuse = |detail: &str| {
        if reverse {
            reply(StatusCode::UNAUTHORIZED, detail)
        } else {
            let mut response = reply(StatusCode::PROXY_AUTHENTICATION_REQUIRED, detail);
            response.headers_mut().insert(
                hyper::header::PROXY_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"handoffrail\""),
            );
            response
        }
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
                    .ok_or_else(|| refuse("Missing X-API-Key header or proxy credentials"))?;
                request.headers_mut().remove("x-api-key");
                (None, key)
            }
            None => return Err(refuse(
                "Proxy credentials required: Proxy-Authorization: Basic base64(AGENT_ID:API_KEY)",
            )),
        };
    let key_hash = crate::auth::hash_key(&presented);
    let key = authorize(interceptor, &key_hash, refuse).await?;
    Ok(Caller {
        key,
        agent_id,
        key_hash,
    })
}

/// The key behind `key_hash`, if it may record traffic now: live, and agent or above.
async fn authorize(
    interceptor: &Interceptor,
    key_hash: &str,
    unknown: impl Fn(&str) -> Response<ProxyBody>,
) -> Result<ApiKey, Response<ProxyBody>> {
    let key = match interceptor
        .keys
        .find_hashed(interceptor.store.as_ref(), key_hash)
        .await
    {
        Ok(Some(key)) => key,
        Ok(None) => return Err(unknown("Invalid API key")),
        Err(error) => {
            tracing::error!(%error, source = "internal", "key lookup failed");
            return Err(reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "The database is unavailable",
            ));
        }
    };
    if key.revoked {
        return Err(reply(StatusCode::FORBIDDEN, "API key has been revoked"));
    }
    if !key.role.grants(Role::Agent) {
        return Err(reply(
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
    caller: Caller,
) -> Result<Caller, Response<ProxyBody>> {
    let refused = |detail: &str| reply(StatusCode::FORBIDDEN, detail);
    let key = match authorize(interceptor, &caller.key_hash, refused).await {
        Ok(key) => key,
        Err(mut refusal) => {
            refusal
                .headers_mut()
                .insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
            return Err(refusal);
        }
    };
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
            return Err(reply(
                StatusCode::MISDIRECTED_REQUEST,
                &format!("Host {named} is not this tunnel's authority {authority}"),
            ));
        }
    }
    Ok(Caller { key, ..caller })
}

/// Phases 2–7 for a request on the proxy port (forward or reverse) or inside a tunnel.
pub async fn proxy(
    interceptor: Arc<Interceptor>,
    mut request: Request<Incoming>,
    leg: Leg,
    tunnel_caller: Option<Caller>,
) -> Response<ProxyBody> {
    let arrived = Timestamp::now();
    let id = Uuid::now_v7();
    let rules = interceptor.rules.current();

    // Phase 2, upstream peer.
    let destination = match destination(request.uri(), &leg, &rules.routes) {
        Ok(destination) => destination,
        Err(error) => return reply(StatusCode::NOT_FOUND, &error.to_string()),
    };
    let caller = match (tunnel_caller, &leg) {
        (Some(caller), Leg::Tunnel(authority)) => {
            match tunnel_request_caller(&interceptor, &request, authority, caller).await {
                Ok(caller) => caller,
                Err(refusal) => return refusal,
            }
        }
        (Some(caller), Leg::Plain) => caller,
        (None, _) => {
            match identify_caller(&interceptor, &mut request, destination.route.is_some()).await {
                Ok(caller) => caller,
                Err(refusal) => return refusal,
            }
        }
    };
    let tags = headers::tags(request.headers());
    let method = request.method().clone();
    let url = destination.url.as_str();

    // Phase 3, trust.
    let trusted = match interceptor
        .trust
        .trust_list(interceptor.store.as_ref(), &caller.key.tenant_id, &rules)
        .await
    {
        Ok(list) => list.covers_url(method.as_str(), &destination.url),
        Err(error) => {
            tracing::error!(%error, source = "internal", "trusted endpoints unavailable");
            return reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "The database is unavailable",
            );
        }
    };
    let mut record = skeleton(id, &caller, &tags, method.as_str(), url, trusted, arrived);
    if interceptor.options.block_untrusted && !trusted {
        record.upstream_error = Some("blocked: not a trusted endpoint (--block-untrusted)".into());
        record.timings.ended_at = Some(Timestamp::now());
        let refusal = reply(
            StatusCode::FORBIDDEN,
            &format!("{method} {url} is not a trusted endpoint"),
        );
        return acknowledged(&interceptor, record, refusal).await;
    }

    // Phase 4, upstream request.
    let request_capture: SharedCapture = Arc::new(Mutex::new(Capture::new(
        interceptor.options.record_body_limit,
    )));
    let upstream_request = upstream_request(request, &destination, request_capture.clone());
    record.request_headers = headers::recorded(upstream_request.headers());

    // Phase 5, send.
    let sent = tokio::time::timeout(
        interceptor.options.upstream_timeout,
        interceptor.client.request(upstream_request),
    )
    .await;
    let response = match sent {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => {
            let detail = crate::describe_error(&error);
            tracing::info!(record_id = %id, %url, error = %detail, source = "upstream", "upstream failed");
            return failed(
                &interceptor,
                record,
                &request_capture,
                StatusCode::BAD_GATEWAY,
                detail,
            )
            .await;
        }
        Err(_) => {
            let detail = format!(
                "upstream did not answer within {:?} (--upstream-timeout)",
                interceptor.options.upstream_timeout
            );
            tracing::info!(record_id = %id, %url, source = "upstream", "upstream timed out");
            return failed(
                &interceptor,
                record,
                &request_capture,
                StatusCode::GATEWAY_TIMEOUT,
                detail,
            )
            .await;
        }
    };

    // Phase 6, response filter.
    record.timings.first_byte_at = Some(Timestamp::now());
    record.status = Some(response.status().as_u16());
    let (mut parts, body) = response.into_parts();
    headers::strip_for_client(&mut parts.headers);
    record.response_headers = headers::recorded(&parts.headers);
    parts
        .headers
        .insert(headers::RECORD, headers::record_id_value(id));

    // Phase 7, body filter and recording.
    let pending = interceptor.recorder.pending(record, request_capture);
    let tee = ResponseTee::new(body, interceptor.options.record_body_limit, pending);
    Response::from_parts(parts, Either::Left(tee))
}

fn skeleton(
    id: Uuid,
    caller: &Caller,
    tags: &Tags,
    method: &str,
    url: &str,
    trusted: bool,
    arrived: Timestamp,
) -> Record {
    Record {
        id,
        tenant_id: caller.key.tenant_id.clone(),
        run_id: tags.run_id.clone(),
        agent_id: tags.agent_id.clone().or_else(|| caller.agent_id.clone()),
        action: tags.action.clone(),
        method: method.to_string(),
        url: url.to_string(),
        request_headers: Vec::new(),
        request_body: Vec::new(),
        request_body_size: 0,
        request_truncated: false,
        status: None,
        response_headers: Vec::new(),
        response_body: Vec::new(),
        response_body_size: 0,
        response_truncated: false,
        timings: Timings {
            started_at: arrived,
            first_byte_at: None,
            ended_at: None,
        },
        upstream_error: None,
        aborted: false,
        provenance: Provenance::Proxy,
        trusted,
    }
}

/// The request as the upstream gets it: same method, path, query, headers (less hop-by-hop and control
/// headers) and body; HTTP/1.1; `Host` is always the destination's authority (RFC 9112 §3.2.2: a proxy
/// replaces the `Host` of an absolute-form request), so that the host recorded is the host that answered.
fn upstream_request(
    request: Request<Incoming>,
    destination: &Destination,
    capture: SharedCapture,
) -> Request<RequestTee> {
    let (mut parts, body) = request.into_parts();
    headers::strip_for_upstream(&mut parts.headers);
    if let Ok(host) = HeaderValue::from_str(&headers::host_of(&destination.url)) {
        parts.headers.insert(HOST, host);
    }
    parts.uri = destination.uri.clone();
    parts.version = hyper::Version::HTTP_11;
    Request::from_parts(parts, RequestTee::new(body, capture))
}

/// The exchange failed upstream: record it without a response and answer 502 or 504.
async fn failed(
    interceptor: &Interceptor,
    mut record: Record,
    request: &SharedCapture,
    status: StatusCode,
    detail: String,
) -> Response<ProxyBody> {
    capture::take(request).into_request_of(&mut record);
    record.upstream_error = Some(detail.clone());
    record.timings.ended_at = Some(Timestamp::now());
    acknowledged(interceptor, record, reply(status, &detail)).await
}

/// A response the proxy makes itself, sent with its record's id once the record is durable; if the record
/// can be neither committed nor spooled, a 503 without an id instead.
async fn acknowledged(
    interceptor: &Interceptor,
    record: Record,
    response: Response<ProxyBody>,
) -> Response<ProxyBody> {
    let id = record.id;
    match interceptor.recorder.record(record).await {
        Durable::Committed | Durable::Spooled => with_record_id(response, id),
        Durable::Failed => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "The exchange could not be recorded",
        ),
    }
}
