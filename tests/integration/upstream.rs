//! A real upstream on loopback for the proxy tests: echoes what it received, streams chunked and SSE bodies,
//! answers slowly, or sends a very large body.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use base64::Engine;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Default)]
pub struct Seen {
    pub hits: Arc<AtomicUsize>,
    /// Requests to `/pause/{ms}` answered (after their pause).
    pub paused_answers: Arc<AtomicUsize>,
}

pub struct Upstream {
    pub addr: SocketAddr,
    pub seen: Seen,
}

impl Upstream {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn hits(&self) -> usize {
        self.seen.hits.load(Ordering::SeqCst)
    }

    pub fn paused_answers(&self) -> usize {
        self.seen.paused_answers.load(Ordering::SeqCst)
    }
}

fn router(seen: Seen) -> Router {
    Router::new()
        .route("/echo", any(echo))
        .route("/echo/{*rest}", any(echo))
        .route("/chunked", get(chunked))
        .route("/sse", get(sse))
        .route("/slow", get(slow))
        .route("/pause/{ms}", get(pause))
        .route("/big/{mib}", get(big))
        .route("/gzip", get(gzipped))
        .with_state(seen)
}

pub async fn spawn_upstream() -> Upstream {
    let seen = Seen::default();
    let app = router(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("upstream binds");
    let addr = listener.local_addr().expect("upstream addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Upstream { addr, seen }
}

/// The same upstream over TLS, with a certificate for `localhost` and 127.0.0.1 from a test CA of its own.
pub struct TlsUpstream {
    pub upstream: Upstream,
    /// The test CA, PEM: what `--upstream-ca` (or a client talking to it directly) must trust.
    pub ca_pem: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

pub async fn spawn_tls_upstream() -> TlsUpstream {
    handoffrail::install_crypto_provider();
    let dir = tempfile::TempDir::new().expect("dir");
    let ca_key = rcgen::KeyPair::generate().expect("ca key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "upstream test CA");
    let ca = ca_params.self_signed(&ca_key).expect("ca");
    let leaf_key = rcgen::KeyPair::generate().expect("leaf key");
    let leaf =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("leaf params")
            .signed_by(&leaf_key, &ca, &ca_key)
            .expect("leaf");
    let ca_pem = dir.path().join("upstream-ca.pem");
    std::fs::write(&ca_pem, ca.pem()).expect("write ca");
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)
        .expect("tls config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let seen = Seen::default();
    let app = router(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("upstream binds");
    let addr = listener.local_addr().expect("upstream addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let service = hyper_util::service::TowerToHyperService::new(app);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    TlsUpstream {
        upstream: Upstream { addr, seen },
        ca_pem,
        _dir: dir,
    }
}

/// Everything the upstream received, as JSON.
async fn echo(State(seen): State<Seen>, request: Request) -> Response {
    seen.hits.fetch_add(1, Ordering::SeqCst);
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let headers: Vec<Value> = parts
        .headers
        .iter()
        .map(|(name, value)| json!([name.as_str(), String::from_utf8_lossy(value.as_bytes())]))
        .collect();
    let seen = json!({
        "method": parts.method.as_str(),
        "target": parts.uri.path_and_query().map(|pq| pq.as_str()).unwrap_or("/"),
        "headers": headers,
        "body": base64::engine::general_purpose::STANDARD.encode(&body),
    });
    let mut response_headers = HeaderMap::new();
    response_headers.insert("content-type", "application/json".parse().expect("value"));
    response_headers.insert(
        "set-cookie",
        "session=upstream-secret".parse().expect("value"),
    );
    response_headers.append("x-repeated", "1".parse().expect("value"));
    response_headers.append("x-repeated", "2".parse().expect("value"));
    (StatusCode::OK, response_headers, seen.to_string()).into_response()
}

pub const ORDER: &str = r#"{"order": {"id": 7, "status": "shipped", "total": 89.5}}"#;

/// `ORDER`, gzip-encoded, as the `/gzip` route sends it.
pub fn gzipped_order() -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(ORDER.as_bytes()).expect("gzip");
    encoder.finish().expect("gzip")
}

async fn gzipped(State(seen): State<Seen>) -> Response {
    seen.hits.fetch_add(1, Ordering::SeqCst);
    (
        [
            ("content-type", "application/json"),
            ("content-encoding", "gzip"),
        ],
        gzipped_order(),
    )
        .into_response()
}

pub const CHUNKS: [&str; 4] = ["{\"parts\": [", "1, ", "2, ", "3]}"];

/// `parts` as a streamed body of `content_type`, one part every 20 ms.
fn drip(parts: &'static [&'static str], content_type: &'static str) -> Response {
    let stream = futures::stream::iter(parts).then(|part| async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        Ok::<_, std::io::Error>(Bytes::from(*part))
    });
    ([("content-type", content_type)], Body::from_stream(stream)).into_response()
}

async fn chunked(State(seen): State<Seen>) -> Response {
    seen.hits.fetch_add(1, Ordering::SeqCst);
    drip(&CHUNKS, "application/json")
}

pub const EVENTS: [&str; 3] = [
    "event: token\ndata: {\"n\": 1}\n\n",
    "event: token\ndata: {\"n\": 2}\n\n",
    "event: done\ndata: {}\n\n",
];

async fn sse(State(seen): State<Seen>) -> Response {
    seen.hits.fetch_add(1, Ordering::SeqCst);
    drip(&EVENTS, "text/event-stream")
}

async fn slow(State(seen): State<Seen>) -> Response {
    seen.hits.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(10)).await;
    "too late".into_response()
}

/// Answers after `ms` milliseconds, counting the request on arrival and the answer when it goes.
async fn pause(
    State(seen): State<Seen>,
    axum::extract::Path(ms): axum::extract::Path<u64>,
) -> Response {
    seen.hits.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    seen.paused_answers.fetch_add(1, Ordering::SeqCst);
    "paused".into_response()
}

/// `mib` MiB of JSON-ish text in 64 KiB chunks, generated as it is sent.
async fn big(
    State(seen): State<Seen>,
    axum::extract::Path(mib): axum::extract::Path<usize>,
) -> Response {
    seen.hits.fetch_add(1, Ordering::SeqCst);
    let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
    let stream =
        futures::stream::iter(0..mib * 16).map(move |_| Ok::<_, std::io::Error>(chunk.clone()));
    let length = (mib * 1024 * 1024).to_string();
    ([("content-length", length)], Body::from_stream(stream)).into_response()
}

use futures::StreamExt;
