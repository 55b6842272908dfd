//! Why the proxy answers an exchange itself, by who is to blame, and the one place that answer is made:
//! logged with its `source`, recorded when the exchange had begun (the answer then carries the record's id,
//! once the record is durable), and sent as `{"detail": ...}` JSON.

use super::exchange::ProxyBody;
use super::headers;
use super::in_flight::InFlight;
use super::recorder::Durable;
use super::Interceptor;
use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::header::{HeaderValue, CONNECTION, CONTENT_TYPE, PROXY_AUTHENTICATE};
use hyper::{Response, StatusCode};
use serde_json::json;

/// Where a failure came from (logged as `source`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The agent's request: refused, nothing forwarded.
    Downstream,
    /// The upstream failed or did not answer in time.
    Upstream,
    /// Our side (the database) failed.
    Internal,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::Downstream => "downstream",
            Source::Upstream => "upstream",
            Source::Internal => "internal",
        }
    }
}

pub struct ProxyError {
    source: Source,
    status: StatusCode,
    /// What the agent is told.
    detail: String,
    /// The exchange's record, when it had begun, with what the record says went wrong.
    exchange: Option<Box<(InFlight, String)>>,
    /// A 407 asks for proxy credentials.
    challenge: bool,
    /// The connection ends after this answer (a tunnel whose key no longer records).
    close: bool,
}

impl ProxyError {
    pub fn downstream(status: StatusCode, detail: impl Into<String>) -> Self {
        ProxyError {
            source: Source::Downstream,
            status,
            detail: detail.into(),
            exchange: None,
            challenge: status == StatusCode::PROXY_AUTHENTICATION_REQUIRED,
            close: false,
        }
    }

    /// A refusal after the exchange began (`--block-untrusted`): recorded with `error`.
    pub fn refused_recorded(
        exchange: InFlight,
        status: StatusCode,
        detail: impl Into<String>,
        error: String,
    ) -> Self {
        ProxyError {
            exchange: Some(Box::new((exchange, error))),
            ..ProxyError::downstream(status, detail)
        }
    }

    /// The upstream failed (502) or timed out (504): recorded without a response.
    pub fn upstream(exchange: InFlight, status: StatusCode, detail: String) -> Self {
        ProxyError {
            source: Source::Upstream,
            status,
            exchange: Some(Box::new((exchange, detail.clone()))),
            detail,
            challenge: false,
            close: false,
        }
    }

    /// The database could not answer what the exchange needed (`what`): 503, nothing recorded.
    pub fn database(what: &str, error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, source = Source::Internal.as_str(), "{what} failed");
        ProxyError {
            source: Source::Internal,
            status: StatusCode::SERVICE_UNAVAILABLE,
            detail: "The database is unavailable".into(),
            exchange: None,
            challenge: false,
            close: false,
        }
    }

    /// Ends the connection after the answer.
    pub fn closing(self) -> Self {
        ProxyError {
            close: true,
            ..self
        }
    }

    /// The answer: logged, recorded when the exchange had begun, then sent.
    pub async fn respond(self, interceptor: &Interceptor) -> Response<ProxyBody> {
        let source = self.source.as_str();
        match self.source {
            Source::Downstream => {
                tracing::debug!(status = %self.status, detail = %self.detail, source, "request refused")
            }
            Source::Upstream => {
                let record_id = self.exchange.as_ref().map(|failed| failed.0.id());
                tracing::info!(?record_id, error = %self.detail, source, "upstream failed");
            }
            Source::Internal => {}
        }
        let mut response = reply(self.status, &self.detail);
        if self.challenge {
            response.headers_mut().insert(
                PROXY_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"handoffrail\""),
            );
        }
        if self.close {
            response
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
        match self.exchange {
            None => response,
            Some(failed) => {
                let (exchange, error) = *failed;
                acknowledged(interceptor, exchange.failed(error), response).await
            }
        }
    }
}

/// A response the proxy makes itself.
pub fn reply(status: StatusCode, detail: &str) -> Response<ProxyBody> {
    let body = json!({ "detail": detail }).to_string();
    let mut response = Response::new(Either::Right(Full::new(Bytes::from(body))));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// `response`, sent with its record's id once the record is durable; if the record can be neither committed
/// nor spooled, a 503 without an id instead.
async fn acknowledged(
    interceptor: &Interceptor,
    record: crate::records::Record,
    mut response: Response<ProxyBody>,
) -> Response<ProxyBody> {
    let id = record.id;
    match interceptor.recorder.record(record).await {
        Durable::Committed | Durable::Spooled => {
            response
                .headers_mut()
                .insert(headers::RECORD, headers::record_id_value(id));
            response
        }
        Durable::Failed => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "The exchange could not be recorded",
        ),
    }
}
