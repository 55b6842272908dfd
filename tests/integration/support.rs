//! Test harness: boots the real server on port 0 against a fresh SQLite file or a fresh PostgreSQL schema
//! (`HANDOFFRAIL_TEST_POSTGRES_URL`), and talks HTTP to it.

use handoffrail::auth::generate_key;
use handoffrail::config::ServeConfig;
use handoffrail::server::Server;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::Connection;
use std::net::SocketAddr;
use std::sync::Arc;
use tempfile::TempDir;
use tokio::sync::oneshot;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs the named async test functions once per backend; Postgres runs are skipped with a notice when
/// `HANDOFFRAIL_TEST_POSTGRES_URL` is unset.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::support::Backend::Sqlite).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if $crate::support::postgres_url().is_some() {
                        super::$name($crate::support::Backend::Postgres).await
                    } else {
                        $crate::support::notice_postgres_skipped();
                    }
                }
            }
        )*
    };
}

/// Tells the person running the tests, once, that the PostgreSQL half was skipped. Written to the real
/// stderr because the test harness captures `eprintln!`.
pub fn notice_postgres_skipped() {
    static NOTICE: std::sync::Once = std::sync::Once::new();
    NOTICE.call_once(|| {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "\nnotice: HANDOFFRAIL_TEST_POSTGRES_URL is not set; the PostgreSQL variants of the tests are skipped\n"
        );
    });
}

pub fn postgres_url() -> Option<String> {
    std::env::var("HANDOFFRAIL_TEST_POSTGRES_URL")
        .ok()
        .filter(|url| !url.is_empty())
}

pub fn init() {
    handoffrail::install_crypto_provider();
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("info,sqlx=warn")
            .with_test_writer()
            .try_init();
    }
}

/// A test's database: a file in its temporary directory, or a PostgreSQL schema of its own, dropped when this
/// value is (declare it before the servers that use it, so that they stop first).
pub struct TestDatabase {
    pub url: String,
    schema: Option<String>,
}

impl TestDatabase {
    /// A SQLite file at `path`, which the test's temporary directory removes.
    pub fn file(path: &std::path::Path) -> Self {
        Self {
            url: format!("sqlite://{}", path.display()),
            schema: None,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (Some(schema), Some(base)) = (self.schema.take(), postgres_url()) else {
            return;
        };
        // Drop runs inside the test's runtime, which cannot wait on a future: a thread of its own does it. A
        // server left running may still hold a lock; then the schema stays rather than the test hanging.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let mut connection = sqlx::PgConnection::connect(&base).await?;
                sqlx::query("SET lock_timeout = '5s'")
                    .execute(&mut connection)
                    .await?;
                sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                    .execute(&mut connection)
                    .await
                    .map(|_| ())
            })
        })
        .join();
        if let Ok(Err(error)) = dropped {
            eprintln!("test schema not dropped: {error}");
        }
    }
}

/// A fresh, empty database of `backend` for one test: a file in `dir`, or a new schema.
pub async fn fresh_database(backend: Backend, dir: &TempDir) -> TestDatabase {
    match backend {
        Backend::Sqlite => TestDatabase::file(&dir.path().join("handoffrail.db")),
        Backend::Postgres => {
            let base = postgres_url().expect("postgres configured");
            let schema = format!("hrtest_{}", uuid::Uuid::new_v4().simple());
            let mut connection = sqlx::PgConnection::connect(&base)
                .await
                .expect("connect to test postgres");
            sqlx::query(&format!("CREATE SCHEMA {schema}"))
                .execute(&mut connection)
                .await
                .expect("create test schema");
            let separator = if base.contains('?') { '&' } else { '?' };
            TestDatabase {
                url: format!("{base}{separator}options=-c%20search_path%3D{schema}"),
                schema: Some(schema),
            }
        }
    }
}

pub struct TestApp {
    pub addr: SocketAddr,
    /// The interceptor proxy's address.
    pub proxy_addr: Option<SocketAddr>,
    pub admin_key: String,
    pub database_url: String,
    pub http: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _dir: Arc<TempDir>,
    /// Last: dropped after the server has been told to stop.
    _database: Option<TestDatabase>,
}

pub struct AppOptions {
    pub database_url: Option<String>,
    pub dir: Option<Arc<TempDir>>,
    pub configure: Box<dyn FnOnce(&mut ServeConfig) + Send>,
    /// `--rules` (a directory the test wrote, e.g. with routes to its upstream).
    pub rules: Option<std::path::PathBuf>,
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            database_url: None,
            dir: None,
            configure: Box::new(|_| {}),
            rules: None,
        }
    }
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, AppOptions::default()).await
}

pub async fn spawn_app_with(backend: Backend, options: AppOptions) -> TestApp {
    init();
    let dir = options
        .dir
        .unwrap_or_else(|| Arc::new(TempDir::new().expect("temp dir")));
    let (database_url, database) = match options.database_url {
        Some(url) => (url, None),
        None => {
            let database = fresh_database(backend, &dir).await;
            (database.url.clone(), Some(database))
        }
    };
    let admin_key = generate_key();
    let mut config = ServeConfig::with_data_dir(dir.path().to_path_buf());
    config.database_url = Some(database_url.clone());
    config.admin_key = Some(admin_key.clone());
    config.db_max_connections = 8;
    // Suites send far more than 60 requests a minute with one key; the rate-limit tests turn limits on.
    config.limits.no_rate_limits = true;
    if options.rules.is_some() {
        config.rules = options.rules;
    }
    (options.configure)(&mut config);
    let server = Server::bind(config).await.expect("server binds");
    let addr = server.local_addr().expect("local addr");
    let proxy_addr = server.proxy_addr();
    let (shutdown, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    TestApp {
        addr,
        proxy_addr,
        admin_key,
        database_url,
        http: reqwest::Client::new(),
        shutdown: Some(shutdown),
        server: Some(handle),
        _dir: dir,
        _database: database,
    }
}

/// A reply: status and the body parsed as JSON (`Value::Null` when empty or not JSON).
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub text: String,
}

impl Reply {
    /// Fails the test unless the request succeeded (2xx): for setup steps, whose answers are not otherwise
    /// looked at.
    #[track_caller]
    pub fn succeeded(&self) -> &Self {
        assert!(
            self.status.is_success(),
            "a setup request failed: {} {}",
            self.status,
            self.text
        );
        self
    }
}

impl TestApp {
    /// The server's data directory (record key, embedded database).
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// The server's own record key and a second handle on its database, to play the recorder.
    pub async fn recorder(
        &self,
    ) -> (
        handoffrail::records::RecordKey,
        Arc<dyn handoffrail::store::Store>,
    ) {
        let key = handoffrail::records::RecordKey::load_or_create(self.data_dir())
            .expect("the server's record key");
        let store = handoffrail::store::open(
            &self.database_url,
            &handoffrail::store::StoreOptions::default(),
        )
        .await
        .expect("store");
        (key, store)
    }

    /// `/openapi.json`, parsed.
    pub async fn openapi_document(&self) -> Value {
        self.http
            .get(self.url("/openapi.json"))
            .send()
            .await
            .expect("sent")
            .json()
            .await
            .expect("the document is JSON")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `/metrics`, as text.
    pub async fn metrics(&self) -> String {
        self.http
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    }

    pub fn api(&self, path: &str) -> String {
        self.url(&format!("/api/v1{path}"))
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("server task")
                .expect("server stopped cleanly");
        }
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self.http.request(method, self.api(path));
        if let Some(key) = key {
            request = request.header("X-API-Key", key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        into_reply(request.send().await.expect("request sent")).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, Some(&self.admin_key), None)
            .await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Some(&self.admin_key), Some(body))
            .await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.send(Method::PATCH, path, Some(&self.admin_key), Some(body))
            .await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, Some(&self.admin_key), None)
            .await
    }

    /// Creates a packet and returns its JSON, asserting 201.
    pub async fn create_packet(&self, body: Value) -> Value {
        let reply = self.post("/packets", body).await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "create failed: {}",
            reply.text
        );
        reply.body
    }

    /// Creates a key with `role` (in `tenant`, default the admin's) and returns its plaintext.
    pub async fn key(&self, role: &str, tenant: Option<&str>) -> String {
        let mut body = json!({"name": format!("{role} key"), "role": role});
        if let Some(tenant) = tenant {
            body["tenant_id"] = json!(tenant);
        }
        let reply = self.post("/keys", body).await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "key create failed: {}",
            reply.text
        );
        reply.body["key"]
            .as_str()
            .expect("plaintext key")
            .to_string()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

pub async fn into_reply(response: reqwest::Response) -> Reply {
    let status = response.status();
    let text = response.text().await.expect("body read");
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply { status, body, text }
}

/// A minimal valid create body.
pub fn packet_body(source: &str, target: &str, summary: &str) -> Value {
    json!({
        "metadata": {
            "source_agent": {"id": source, "name": format!("{source} bot")},
            "target_agent": {"id": target, "name": format!("{target} bot")}
        },
        "context": {"summary": summary}
    })
}

/// The body the SDK's PacketBuilder produces, every section filled.
pub fn full_packet_body() -> Value {
    json!({
        "metadata": {
            "source_agent": {"id": "sales-01", "name": "SalesBot", "framework": "langchain", "version": "1.2"},
            "target_agent": {"id": "billing-01", "name": "BillingBot"},
            "created_at": "2026-11-21T09:14:32.682573Z",
            "priority": "high",
            "tags": ["upgrade", "business"]
        },
        "context": {
            "summary": "Customer wants Business tier",
            "conversation_state": [{"role": "user", "content": "I want to upgrade", "timestamp": 1763716472.5}],
            "artifacts": [{"key": "quote", "value": {"amount": 1200}, "content_type": "application/json"}],
            "custom": {"account": 42, "exact": 9007199254740993u64}
        },
        "decisions": [{"id": "d1", "decision": "Proceed", "rationale": "", "alternatives": ["wait"]}],
        "actions": {
            "pending": [{"id": "a1", "description": "Process payment", "assignee": "billing-01", "priority": "high", "depends_on": []}],
            "completed": [{"id": "a0", "description": "Verify", "result": "ok"}],
            "failed": [{"id": "a2", "description": "Email", "error": "bounced", "retries_remaining": "2"}]
        },
        "dependencies": [{"id": "stripe", "type": "api", "description": "", "status": "unknown"}]
    })
}

impl TestApp {
    /// Sends a raw body, either with Content-Length or chunked (no length known in advance).
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        key: &str,
        body: String,
        chunked: bool,
    ) -> Reply {
        let request = self
            .http
            .request(method, self.api(path))
            .header("X-API-Key", key)
            .header("content-type", "application/json");
        let request = if chunked {
            let chunks: Vec<Result<Vec<u8>, std::io::Error>> = body
                .into_bytes()
                .chunks(16 * 1024)
                .map(|chunk| Ok(chunk.to_vec()))
                .collect();
            request.body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        } else {
            request.body(body)
        };
        into_reply(request.send().await.expect("request sent")).await
    }
}

/// The real binary serving on a free port.
pub struct Process {
    pub child: std::process::Child,
    pub base: String,
    /// The proxy's `host:port`.
    pub proxy: String,
    /// Every log line printed after the "listening" one.
    pub log: Arc<std::sync::Mutex<Vec<String>>>,
}

/// Starts `handoffrail serve` on a free port (plus `extra` arguments) and waits for its "listening" log line.
pub fn start_binary_with(
    database_url: &str,
    data_dir: &std::path::Path,
    admin_key: &str,
    extra: &[&str],
) -> Process {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_handoffrail"))
        .args([
            "serve",
            "--port",
            "0",
            "--log-format",
            "json",
            "--proxy-port",
            "0",
            "--database-url",
            database_url,
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .args(extra)
        .env("HANDOFFRAIL_ADMIN_KEY", admin_key)
        .env("HANDOFFRAIL_NO_RATE_LIMITS", "true")
        .env("HANDOFFRAIL_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("server binary starts");
    let stderr = child.stderr.take().expect("stderr piped");
    let mut lines = BufReader::new(stderr).lines();
    let (mut addr, mut proxy) = (None, None);
    while addr.is_none() || proxy.is_none() {
        let line = lines
            .next()
            .expect("server printed its addresses before exiting")
            .expect("log line");
        let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        let listening = event["addr"].as_str().map(String::from);
        if event["message"] == "handoffrail API listening" {
            addr = listening;
        } else if event["message"] == "handoffrail proxy listening" {
            proxy = listening;
        }
    }
    let (addr, proxy) = (addr.unwrap_or_default(), proxy.unwrap_or_default());
    // Keep draining stderr so the server never blocks on a full pipe.
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            sink.lock().expect("log lock").push(line);
        }
    });
    Process {
        child,
        base: format!("http://{addr}/api/v1"),
        proxy,
        log,
    }
}

pub fn start_binary(database_url: &str, data_dir: &std::path::Path, admin_key: &str) -> Process {
    start_binary_with(database_url, data_dir, admin_key, &[])
}

/// Waits until the spool in `data_dir` holds no batch — a server replays what it or a crashed process left
/// there once the database answers — and fails the test if it still does after three minutes.
pub async fn wait_for_empty_spool(data_dir: &std::path::Path) {
    let spool = data_dir.join("spool");
    let waiting = || {
        std::fs::read_dir(&spool).map_or(0, |entries| {
            entries
                .filter_map(Result::ok)
                .filter(|entry| {
                    entry
                        .path()
                        .extension()
                        .is_some_and(|extension| extension == "jsonl")
                })
                .count()
        })
    };
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(180) {
        if waiting() == 0 {
            eprintln!(
                "spool replayed {:?} after the wait began",
                started.elapsed()
            );
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!(
        "{} spooled batches still waiting after 3 minutes",
        waiting()
    );
}

impl TestApp {
    /// `/health` answers 200: a crashed process or a blocked runtime fails here.
    pub async fn assert_healthy(&self) {
        let health = self
            .http
            .get(self.url("/health"))
            .send()
            .await
            .expect("health answers");
        assert_eq!(health.status(), StatusCode::OK);
    }

    /// The proxy's CA certificate (PEM).
    pub async fn proxy_ca(&self) -> String {
        let pem = self
            .http
            .get(self.api("/ca.pem"))
            .header("X-API-Key", &self.admin_key)
            .send()
            .await
            .expect("ca.pem")
            .text()
            .await
            .expect("pem");
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
        pem
    }
}
