//! The record of one exchange while it is in flight, and the one place it changes. Each method is a step of
//! the exchange, in the order they happen: begun (who, what, whether trusted), forwarded (the request as the
//! upstream got it), answered (status and headers), and ended (bodies, end time, how it ended) or failed
//! (no response). The request body's copy is filled by the [`RequestTee`] as the upstream reads it.

use super::capture::{self, Capture, Ending, RequestTee, SharedCapture};
use super::exchange::ProxyCaller;
use super::headers::{self, Tags};
use crate::records::{Provenance, Record, Timings};
use crate::timestamp::Timestamp;
use hyper::body::Incoming;
use hyper::{HeaderMap, StatusCode};
use std::sync::{Arc, Mutex};
use uuid::Uuid;

pub struct InFlight {
    record: Record,
    /// The request body's copy, shared with the tee that fills it.
    request: SharedCapture,
}

/// What an exchange is when it begins.
pub struct Begun<'a> {
    pub id: Uuid,
    pub caller: &'a ProxyCaller,
    pub tags: &'a Tags,
    pub method: &'a str,
    pub url: &'a str,
    pub trusted: bool,
    pub arrived: Timestamp,
    /// Bytes of each body the record keeps.
    pub body_limit: u64,
}

impl InFlight {
    pub fn begin(begun: Begun<'_>) -> InFlight {
        let Begun {
            id,
            caller,
            tags,
            method,
            url,
            trusted,
            arrived,
            body_limit,
        } = begun;
        let record = Record {
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
        };
        InFlight {
            record,
            request: Arc::new(Mutex::new(Capture::new(body_limit))),
        }
    }

    pub fn id(&self) -> Uuid {
        self.record.id
    }

    /// The request body on its way upstream, copied for the record as it goes.
    pub fn request_tee(&self, body: Incoming) -> RequestTee {
        RequestTee::new(body, self.request.clone())
    }

    /// The request left for the upstream with these headers.
    pub fn forwarded(&mut self, request_headers: &HeaderMap) {
        self.record.request_headers = headers::recorded(request_headers);
    }

    /// The upstream answered with this status and these headers (as the client gets them).
    pub fn answered(&mut self, status: StatusCode, response_headers: &HeaderMap) {
        self.record.timings.first_byte_at = Some(Timestamp::now());
        self.record.status = Some(status.as_u16());
        self.record.response_headers = headers::recorded(response_headers);
    }

    /// The response body ended (or broke off): both bodies and the end of the exchange.
    pub fn ended(&mut self, response: Capture, ending: Ending, upstream_error: Option<String>) {
        self.take_request_body();
        let record = &mut self.record;
        record.response_body = response.bytes;
        record.response_body_size = response.size;
        record.response_truncated = response.truncated;
        record.timings.ended_at = Some(Timestamp::now());
        record.aborted = ending == Ending::ClientGone;
        if upstream_error.is_some() {
            record.upstream_error = upstream_error;
        }
    }

    /// The client left before it had the whole response.
    pub fn client_gone(&mut self) {
        self.record.aborted = true;
    }

    /// The exchange ended without an upstream response (`error` says why): the record as it stands.
    pub fn failed(mut self, error: String) -> Record {
        self.take_request_body();
        self.record.upstream_error = Some(error);
        self.record.timings.ended_at = Some(Timestamp::now());
        self.record
    }

    /// The finished record.
    pub fn into_record(self) -> Record {
        self.record
    }

    fn take_request_body(&mut self) {
        let request = capture::take(&self.request);
        self.record.request_body = request.bytes;
        self.record.request_body_size = request.size;
        self.record.request_truncated = request.truncated;
    }
}
