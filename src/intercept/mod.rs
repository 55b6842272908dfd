//! The interceptor (docs/interceptor.md): an HTTP proxy agents' tool traffic passes through. It forwards every
//! request unchanged (less its own control headers), streams the response back, and records the exchange as
//! sealed evidence through the recorder. `exchange` holds the per-request phases; this module owns the
//! listener and the connections.

pub mod ca;
pub mod capture;
pub mod decode;
pub mod destination;
pub mod error;
pub mod exchange;
pub mod headers;
pub mod in_flight;
pub mod recorder;
pub mod spool;
pub mod trust;
pub mod tunnel;
pub mod upstream;

use crate::auth::KeyCache;
use crate::config::ProxyConfig;
use crate::listener::ConnectionLimits;
use crate::records::RecordKey;
use crate::rules::LiveRules;
use crate::store::Store;
use ca::CertificateAuthority;
use destination::Leg;
use exchange::ProxyBody;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use recorder::Recorder;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use trust::TrustCache;
use upstream::UpstreamClient;

/// How long shutdown waits for open exchanges before it lets go of them.
const DRAIN: Duration = Duration::from_secs(10);

/// What the proxy's phases need, shared by every connection.
pub struct Options {
    pub record_body_limit: u64,
    pub upstream_timeout: Duration,
    pub block_untrusted: bool,
    /// Deadlines of agent connections, also applied inside CONNECT tunnels.
    pub connections: ConnectionLimits,
}

pub struct Interceptor {
    /// The MITM CA; `None` with `--no-mitm` (CONNECT is tunnelled blindly).
    pub ca: Option<Arc<CertificateAuthority>>,
    pub store: Arc<dyn Store>,
    pub keys: Arc<KeyCache>,
    pub rules: Arc<LiveRules>,
    pub trust: TrustCache,
    pub recorder: Recorder,
    pub client: UpstreamClient,
    pub options: Options,
    /// CONNECT tunnels, which outlive the connection that opened them: shutdown waits for them.
    pub tunnels: TaskTracker,
    /// Cancelled when shutdown begins: intercepted tunnels then finish their request and close.
    pub stopping: CancellationToken,
}

pub struct Proxy {
    listener: TcpListener,
    interceptor: Arc<Interceptor>,
    recorder_task: JoinHandle<()>,
}

/// Everything the proxy shares with the API server.
pub struct Shared {
    pub store: Arc<dyn Store>,
    pub keys: Arc<KeyCache>,
    pub rules: Arc<LiveRules>,
    pub record_key: Arc<RecordKey>,
    pub ca: Arc<CertificateAuthority>,
    pub cache_ttl: Duration,
    /// Where records are spooled while the database is down.
    pub data_dir: std::path::PathBuf,
    /// Whether the database answers: while it does not, records are spooled without trying it.
    pub database: Arc<crate::store::DatabaseHealth>,
}

impl Proxy {
    pub async fn bind(
        host: &str,
        config: &ProxyConfig,
        connections: ConnectionLimits,
        shared: Shared,
    ) -> anyhow::Result<Proxy> {
        let roots = upstream::roots(config.upstream_ca.as_deref())?;
        let listener = TcpListener::bind((host, config.port))
            .await
            .map_err(|error| anyhow::anyhow!("binding proxy {host}:{}: {error}", config.port))?;
        let (recorder, recorder_task) = Recorder::spawn(
            shared.store.clone(),
            shared.record_key.clone(),
            shared.rules.clone(),
            config.record_body_limit,
            config.record_queue as usize,
            Some(spool::Spool::open(&shared.data_dir).map_err(|error| {
                anyhow::anyhow!(
                    "opening the record spool in {}: {error}",
                    shared.data_dir.display()
                )
            })?),
            shared.database.clone(),
        );
        let upstream_timeout = config.upstream_timeout();
        let interceptor = Interceptor {
            ca: (!config.no_mitm).then_some(shared.ca),
            store: shared.store,
            keys: shared.keys,
            rules: shared.rules,
            trust: TrustCache::new(shared.cache_ttl, shared.database.clone()),
            recorder,
            client: upstream::client(roots, upstream_timeout),
            options: Options {
                record_body_limit: config.record_body_limit,
                upstream_timeout,
                block_untrusted: config.block_untrusted,
                connections,
            },
            tunnels: TaskTracker::new(),
            stopping: CancellationToken::new(),
        };
        Ok(Proxy {
            listener,
            interceptor: Arc::new(interceptor),
            recorder_task,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The recorder's counters, for `/metrics`.
    pub fn recorder_stats(&self) -> Arc<recorder::RecorderStats> {
        self.interceptor.recorder.stats()
    }

    /// Serves until `shutdown`, then lets open exchanges and tunnels finish (up to 10 s each) and flushes the
    /// recorder.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let Proxy {
            listener,
            interceptor,
            recorder_task,
        } = self;
        tracing::info!(addr = %listener.local_addr()?, "handoffrail proxy listening");
        let limits = interceptor.options.connections;
        let serving = interceptor.clone();
        let stopping = interceptor.stopping.clone();
        let shutdown = async move {
            shutdown.await;
            stopping.cancel();
        };
        crate::listener::serve(
            "proxy",
            listener,
            limits,
            crate::listener::ParseErrors::AsHyperWrites,
            move |_peer| {
                let interceptor = serving.clone();
                service_fn(move |request: Request<Incoming>| {
                    let interceptor = interceptor.clone();
                    async move { Ok::<_, Infallible>(serve_request(interceptor, request).await) }
                })
            },
            shutdown,
            DRAIN,
        )
        .await;
        interceptor.tunnels.close();
        if tokio::time::timeout(DRAIN, interceptor.tunnels.wait())
            .await
            .is_err()
        {
            tracing::warn!("tunnels still open after {DRAIN:?}; stopping anyway");
        }
        // The recorder ends when the last sender (held by the interceptor and open exchanges) is gone.
        drop(interceptor);
        if tokio::time::timeout(DRAIN, recorder_task).await.is_err() {
            tracing::error!(
                "the recorder did not drain within {DRAIN:?}; records still queued may be lost"
            );
        }
        tracing::info!("handoffrail proxy stopped");
        Ok(())
    }
}

async fn serve_request(
    interceptor: Arc<Interceptor>,
    request: Request<Incoming>,
) -> Response<ProxyBody> {
    if request.method() == Method::CONNECT {
        return match tunnel::connect(interceptor.clone(), request).await {
            Ok(response) => response,
            Err(error) => error.respond(&interceptor).await,
        };
    }
    exchange::proxy(interceptor, request, Leg::Plain, None).await
}
