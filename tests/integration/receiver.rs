//! A webhook receiver on loopback for the tests: records every request it gets and answers from a script
//! (the next queued answer, else the default one).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    /// What the receiver answered.
    pub status: StatusCode,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_else(|| panic!("no {name} header"))
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

/// An answer: status and headers.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: Vec<(&'static str, String)>,
}

impl Answer {
    pub fn status(status: u16) -> Self {
        Self {
            status: StatusCode::from_u16(status).expect("status"),
            headers: Vec::new(),
        }
    }

    pub fn with(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_string()));
        self
    }
}

#[derive(Default)]
struct Inner {
    received: Vec<Received>,
    queued: VecDeque<Answer>,
    default: Option<Answer>,
}

#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    arrived: Arc<Notify>,
}

impl Receiver {
    /// A receiver that answers 200 unless told otherwise.
    pub async fn start() -> Self {
        Self::start_at(0).await
    }

    /// [`Self::start`] on a given loopback port (0: any free one).
    pub async fn start_at(port: u16) -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let arrived = Arc::new(Notify::new());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("receiver binds");
        let addr = listener.local_addr().expect("receiver address");
        let app = axum::Router::new()
            .fallback(receive)
            .with_state((inner.clone(), arrived.clone()));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            inner,
            arrived,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers the next requests with these, in order.
    pub fn queue(&self, answers: impl IntoIterator<Item = Answer>) {
        self.inner.lock().expect("lock").queued.extend(answers);
    }

    /// Answers every request not covered by a queued answer with this one.
    pub fn answer_by_default(&self, answer: Answer) {
        self.inner.lock().expect("lock").default = Some(answer);
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().expect("lock").received.clone()
    }

    /// Waits (up to `within`) until `done` holds for what arrived, and returns it; fails the test otherwise.
    pub async fn wait_for(
        &self,
        within: Duration,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let notified = self.arrived.notified();
            let received = self.received();
            if done(&received) {
                return received;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let received = self.received();
                assert!(
                    done(&received),
                    "the receiver did not get what was expected within {within:?}; it got {} requests: {:?}",
                    received.len(),
                    received
                        .iter()
                        .map(|r| (r.status, String::from_utf8_lossy(&r.body).into_owned()))
                        .collect::<Vec<_>>()
                );
                return received;
            }
        }
    }

    /// Waits until `count` requests arrived.
    pub async fn wait_for_count(&self, count: usize) -> Vec<Received> {
        self.wait_for(Duration::from_secs(20), |received| received.len() >= count)
            .await
    }
}

async fn receive(
    State((inner, arrived)): State<(Arc<Mutex<Inner>>, Arc<Notify>)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let answer = {
        let mut inner = inner.lock().expect("lock");
        let answer = inner
            .queued
            .pop_front()
            .or_else(|| inner.default.clone())
            .unwrap_or_else(|| Answer::status(200));
        inner.received.push(Received {
            headers,
            body,
            status: answer.status,
        });
        answer
    };
    arrived.notify_waiters();
    let mut response = answer.status.into_response();
    for (name, value) in answer.headers {
        if let Ok(value) = value.parse() {
            response.headers_mut().insert(name, value);
        }
    }
    response
}
