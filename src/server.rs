//! Starting and stopping the service: open the store, bootstrap the first admin key, bind, serve until a
//! shutdown signal, drain in-flight requests. Tests use the same path with port 0.

use crate::api::metrics::Metrics;
use crate::api::{self, AppState};
use crate::auth::{is_well_formed_key, KeyCache, NewApiKey, Role, Tier, DEFAULT_TENANT};
use crate::config::ServeConfig;
use crate::events;
use crate::intercept::ca::CertificateAuthority;
use crate::intercept::{Proxy, Shared};
use crate::listener::{self, ConnectionLimits};
use crate::records::RecordKey;
use crate::rules::LiveRules;
use crate::store::{self, redact_url, Store};
use crate::webhooks::dispatch::Dispatcher;
use crate::webhooks::ssrf::Guard;
use anyhow::Context;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// What a process serves: `serve` runs both, `proxy` only the interceptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listeners {
    ApiAndProxy,
    ProxyOnly,
}

/// How long a stopping server lets open requests finish.
const DRAIN: Duration = Duration::from_secs(10);

/// The API as the service of one connection: axum's router, with the peer's address for handlers that
/// count anonymous callers by address.
fn api_service(
    app: axum::Router,
    peer: SocketAddr,
) -> impl hyper::service::Service<
    hyper::Request<hyper::body::Incoming>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<axum::response::Response, std::convert::Infallible>> + Send,
> + Send {
    let app = hyper_util::service::TowerToHyperService::new(app);
    hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        hyper::service::Service::call(&app, request)
    })
}

pub struct Server {
    /// The API listener; `None` for `handoffrail proxy`.
    listener: Option<TcpListener>,
    connection_limits: ConnectionLimits,
    proxy: Option<Proxy>,
    state: AppState,
    bootstrap_key: Option<String>,
}

impl Server {
    pub async fn bind(config: ServeConfig) -> anyhow::Result<Self> {
        Server::bind_listeners(config, Listeners::ApiAndProxy).await
    }

    pub async fn bind_listeners(
        mut config: ServeConfig,
        listeners: Listeners,
    ) -> anyhow::Result<Self> {
        if listeners == Listeners::ProxyOnly {
            anyhow::ensure!(
                !config.proxy.disabled,
                "`handoffrail proxy` with --no-proxy would serve nothing"
            );
            // The API process bootstraps the first admin key; a proxy only checks keys.
            config.admin_key = None;
        }
        let open_files = listener::raise_open_files_limit();
        let mut connection_limits = config.connections.limits();
        // An API connection holds one descriptor and a proxied one two (agent and upstream).
        connection_limits.max_connections =
            listener::affordable_connections(connection_limits.max_connections, open_files, 3);
        tracing::info!(
            open_files,
            max_connections = connection_limits.max_connections,
            "connection limits"
        );
        let url = config.database_url();
        if url.starts_with("sqlite:") {
            crate::data_dir::create_private_dir(&config.data_dir).with_context(|| {
                format!("creating data directory {}", config.data_dir.display())
            })?;
        }
        let store = store::open(&url, &config.store_options())
            .await
            .with_context(|| format!("opening database {}", redact_url(&url)))?;
        let listener = match listeners {
            Listeners::ApiAndProxy => Some(
                TcpListener::bind((config.host.as_str(), config.port))
                    .await
                    .with_context(|| format!("binding {}:{}", config.host, config.port))?,
            ),
            Listeners::ProxyOnly => None,
        };
        let record_key = RecordKey::load_or_create(&config.data_dir)
            .with_context(|| format!("record signing key in {}", config.data_dir.display()))?;
        let rules = LiveRules::load(config.rules_dir()).context("loading rules")?;
        let database = Arc::new(crate::store::DatabaseHealth::default());
        let keys = Arc::new(KeyCache::new(
            Duration::from_secs(config.key_cache_seconds),
            database.clone(),
        ));
        let record_key = Arc::new(record_key);
        let rules = Arc::new(rules);
        let ca = Arc::new(
            CertificateAuthority::load_or_create(&config.data_dir)
                .with_context(|| format!("MITM CA in {}", config.data_dir.display()))?,
        );
        let proxy = if config.proxy.disabled {
            None
        } else {
            let shared = Shared {
                store: store.clone(),
                keys: keys.clone(),
                rules: rules.clone(),
                record_key: record_key.clone(),
                ca: ca.clone(),
                cache_ttl: Duration::from_secs(config.key_cache_seconds),
                data_dir: config.data_dir.clone(),
                database: database.clone(),
            };
            Some(Proxy::bind(&config.host, &config.proxy, connection_limits, shared).await?)
        };
        let metrics = Metrics::default();
        if let Some(proxy) = &proxy {
            metrics.watch_recorder(proxy.recorder_stats());
        }
        let limiter = Arc::new(crate::auth::limits::Limiter::new(config.limits.settings()));
        let evaluations = Arc::new(crate::evaluations::Capacity::new(
            config.evaluation.limits(),
            config.evaluation.eval_max_evidence,
            config.evaluation.concurrency(),
        ));
        let webhooks = Arc::new(
            Dispatcher::new(
                Guard::system(&config.webhooks.allowed_webhook_hosts),
                config.webhooks.webhook_retry_schedule.clone(),
                config.webhooks.timeout(),
            )
            .context("webhook client")?,
        );
        let live = Arc::new(crate::events::live::Connections::new(
            config.live_connections,
            Duration::from_secs(config.live_heartbeat_seconds.max(1)),
        ));
        // Only now that every listener is bound and everything is built is the first admin key created and
        // shown: a start that fails (a busy port) leaves the bootstrap to the next start.
        let bootstrap_key = match listener {
            Some(_) => bootstrap_admin_key(store.as_ref(), &config).await?,
            None => None,
        };
        let state = AppState {
            live,
            webhooks,
            store,
            limiter,
            config: Arc::new(config),
            metrics: Arc::new(metrics),
            keys,
            record_key,
            rules,
            ca,
            schemas: Default::default(),
            evaluations,
            database,
            started: std::time::Instant::now(),
        };
        Ok(Self {
            listener,
            connection_limits,
            proxy,
            state,
            bootstrap_key,
        })
    }

    /// The API's address (an error for `handoffrail proxy`, which has none).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        match &self.listener {
            Some(listener) => listener.local_addr(),
            None => Err(std::io::Error::other("this process serves no API")),
        }
    }

    /// The proxy's address, unless `--no-proxy`.
    pub fn proxy_addr(&self) -> Option<SocketAddr> {
        self.proxy
            .as_ref()
            .and_then(|proxy| proxy.local_addr().ok())
    }

    pub fn store(&self) -> Arc<dyn Store> {
        self.state.store.clone()
    }

    /// The admin key this start generated, if the database had none.
    pub fn bootstrap_key(&self) -> Option<&str> {
        self.bootstrap_key.as_deref()
    }

    /// Serves until `shutdown` completes, then stops accepting, drains in-flight requests and returns.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let expiry = tokio::spawn(events::expiry::run(
            self.state.store.clone(),
            self.state.config.expiry_interval(),
            self.state.config.packet_ttl(),
            stop_rx.clone(),
        ));
        let deliveries = tokio::spawn(events::webhooks::run(
            self.state.store.clone(),
            self.state.webhooks.clone(),
            self.state.config.webhooks.webhook_concurrency,
            stop_rx.clone(),
        ));
        let trimmer = tokio::spawn(release_freed_memory(stop_rx.clone()));
        let probe = tokio::spawn(store::watch_health(
            self.state.database.clone(),
            self.state.store.clone(),
            stop_rx.clone(),
        ));
        let pruning = self.state.limiter.settings().enabled.then(|| {
            tokio::spawn(events::pruning::run(
                self.state.store.clone(),
                stop_rx.clone(),
            ))
        });
        let reloads = tokio::spawn(reload_rules_on_sighup(
            self.state.rules.clone(),
            stop_rx.clone(),
        ));
        let proxy = self.proxy.map(|proxy| {
            let mut stop = stop_rx.clone();
            tokio::spawn(proxy.run(async move {
                let _ = stop.wait_for(|stopped| *stopped).await;
            }))
        });
        match self.listener {
            Some(listener) => {
                let addr = listener.local_addr()?;
                tracing::info!(%addr, backend = self.state.store.backend().as_str(), "handoffrail API listening");
                let limits = self.connection_limits;
                let app = api::router(self.state);
                let stopping = stop_tx.clone();
                listener::serve(
                    "api",
                    listener,
                    limits,
                    listener::ParseErrors::Json,
                    move |peer| api_service(app.clone(), peer),
                    async move {
                        shutdown.await;
                        let _ = stopping.send(true);
                    },
                    DRAIN,
                )
                .await;
            }
            None => shutdown.await,
        }
        let _ = stop_tx.send(true);
        if let Some(proxy) = proxy {
            match proxy.await {
                Ok(Err(error)) => tracing::error!(%error, "proxy failed"),
                Err(error) => tracing::error!(%error, "proxy task failed"),
                Ok(Ok(())) => {}
            }
        }
        let _ = expiry.await;
        let _ = deliveries.await;
        let _ = probe.await;
        let _ = trimmer.await;
        if let Some(pruning) = pruning {
            let _ = pruning.await;
        }
        let _ = reloads.await;
        tracing::info!("handoffrail stopped");
        Ok(())
    }
}

/// Re-reads the rules directory on every SIGHUP until shutdown. A bad file is logged and the rules in force stay.
/// The handler is installed before this returns, so a SIGHUP sent once the server is ready never kills it.
fn reload_rules_on_sighup(
    rules: Arc<LiveRules>,
    mut stop: watch::Receiver<bool>,
) -> impl Future<Output = ()> {
    #[cfg(unix)]
    let hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
    async move {
        #[cfg(unix)]
        {
            let mut hangups = match hangups {
                Ok(hangups) => hangups,
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGHUP; rules reload only on restart");
                    return;
                }
            };
            loop {
                tokio::select! {
                    _ = stop.changed() => return,
                    received = hangups.recv() => {
                        if received.is_none() {
                            return;
                        }
                        reload(&rules);
                    }
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = (rules, stop.changed().await);
        }
    }
}

fn reload(rules: &LiveRules) {
    let Some(dir) = rules.dir().map(|dir| dir.display().to_string()) else {
        tracing::info!("SIGHUP: no --rules directory to reload");
        return;
    };
    match rules.reload() {
        Ok(loaded) => tracing::info!(
            dir,
            trusted = loaded.trusted.len(),
            routes = loaded.routes.len(),
            actions = loaded.actions.len(),
            "rules reloaded"
        ),
        Err(error) => {
            tracing::error!(%error, "rules not reloaded; the previous rules stay in force")
        }
    }
}

/// The first admin key: `HANDOFFRAIL_ADMIN_KEY` is seeded as given; otherwise an empty database gets a new
/// key, printed once to stderr. Either way only one instance ever bootstraps (a one-row table decides).
async fn bootstrap_admin_key(
    store: &dyn Store,
    config: &ServeConfig,
) -> anyhow::Result<Option<String>> {
    if let Some(plaintext) = config
        .admin_key
        .as_deref()
        .map(str::trim)
        .filter(|key| !key.is_empty())
    {
        anyhow::ensure!(
            is_well_formed_key(plaintext),
            "HANDOFFRAIL_ADMIN_KEY must be hr_ followed by 43 url-safe base64 characters"
        );
        let key = NewApiKey::from_plaintext(
            plaintext.to_string(),
            "admin (seeded)",
            DEFAULT_TENANT,
            Role::Admin,
            Tier::Business,
        )
        .system();
        if store.seed_api_key(&key).await? {
            tracing::info!(key_prefix = %key.key.key_prefix, "seeded admin key from HANDOFFRAIL_ADMIN_KEY");
        }
        return Ok(None);
    }
    let key = NewApiKey::generate(
        "admin (bootstrap)",
        DEFAULT_TENANT,
        Role::Admin,
        Tier::Business,
    )
    .system();
    if store.bootstrap_admin_key(&key).await? {
        eprintln!(
            "\nHandoffRail created the first admin key (tenant '{DEFAULT_TENANT}'). It is shown only this once:\n\n    {}\n",
            key.plaintext
        );
        return Ok(Some(key.plaintext));
    }
    Ok(None)
}

/// Hands memory freed by closed connections back to the system every ten seconds: glibc keeps freed heap
/// pages otherwise, so a flood of 5,000 connections would leave the process 80 MB larger after they are gone.
async fn release_freed_memory(mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(10)) => {}
            _ = async { let _ = stop.wait_for(|stopped| *stopped).await; } => return,
        }
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: malloc_trim only walks the allocator's own structures; it takes no pointers of ours.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
    tracing::info!("shutdown signal received; draining");
}
