//! Server configuration: every flag has a `HANDOFFRAIL_*` environment twin; flags win over the environment,
//! the environment over defaults.

use crate::auth::limits::{LimitSettings, TierTable};
use crate::auth::Tier;
use crate::listener::ConnectionLimits;
use crate::store::{SqliteSynchronous, StoreOptions};
use crate::verify::Limits;
use crate::webhooks::schedule::RetrySchedule;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

#[derive(Clone, Debug, clap::Args)]
pub struct ServeConfig {
    /// Address to listen on.
    #[arg(long, env = "HANDOFFRAIL_HOST", default_value = "127.0.0.1")]
    pub host: String,
    /// API port (0 picks a free one).
    #[arg(long, env = "HANDOFFRAIL_PORT", default_value_t = 8080)]
    pub port: u16,
    /// Database URL: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://<data-dir>/handoffrail.db]
    #[arg(long, env = "HANDOFFRAIL_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Directory for the embedded database and keys.
    #[arg(long, env = "HANDOFFRAIL_DATA_DIR", default_value = "./.handoffrail")]
    pub data_dir: PathBuf,
    /// Log output format.
    #[arg(long, env = "HANDOFFRAIL_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,
    /// SQLite commit durability: `normal` survives a crash of the process, `full` also a power loss.
    #[arg(long, env = "HANDOFFRAIL_SQLITE_SYNCHRONOUS", value_enum, default_value_t = SqliteSynchronous::Normal)]
    pub sqlite_synchronous: SqliteSynchronous,
    /// Largest number of pooled database connections.
    #[arg(long, env = "HANDOFFRAIL_DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: u32,
    /// Tier given to keys created without one.
    #[arg(long, env = "HANDOFFRAIL_DEFAULT_TIER", value_enum, default_value_t = Tier::Business)]
    pub default_tier: Tier,
    /// Seconds after which a packet that is not completed expires.
    #[arg(long, env = "HANDOFFRAIL_PACKET_TTL", default_value_t = 86_400)]
    pub packet_ttl_seconds: u64,
    /// Seconds between two passes of the expiry task.
    #[arg(long, env = "HANDOFFRAIL_EXPIRY_INTERVAL", default_value_t = 60)]
    pub expiry_interval_seconds: u64,
    /// Directory of rules files (*.toml), re-read on SIGHUP [default: ./rules when it exists]
    #[arg(long, env = "HANDOFFRAIL_RULES")]
    pub rules: Option<PathBuf>,
    /// Seconds an authenticated key is remembered (0: look it up on every request). Revocation clears it at
    /// once on this instance; other instances sharing the database notice within this time.
    #[arg(long, env = "HANDOFFRAIL_KEY_CACHE_SECONDS", default_value_t = 5)]
    pub key_cache_seconds: u64,
    /// An admin key (`hr_` + 43 characters) to seed instead of generating one; read from the environment.
    #[arg(long, env = "HANDOFFRAIL_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,
    /// A name for this deployment, reported by `/api/v1/system/health` (`environment`).
    #[arg(long, env = "HANDOFFRAIL_ENVIRONMENT", default_value = "production")]
    pub environment: String,
    #[command(flatten)]
    pub limits: LimitConfig,
    #[command(flatten)]
    pub evaluation: EvaluationConfig,
    #[command(flatten)]
    pub connections: ConnectionConfig,
    #[command(flatten)]
    pub proxy: ProxyConfig,
    #[command(flatten)]
    pub webhooks: WebhookConfig,
    /// Live connections (`/events` and `/ws` together) per tenant, by the key's tier.
    #[arg(
        long,
        env = "HANDOFFRAIL_LIVE_CONNECTIONS",
        default_value = "free=1,pro=5,business=25"
    )]
    pub live_connections: TierTable,
    /// Seconds between heartbeats on an idle live connection.
    #[arg(long, env = "HANDOFFRAIL_LIVE_HEARTBEAT_SECONDS", default_value_t = 30)]
    pub live_heartbeat_seconds: u64,
    /// Live events a subscriber may fall behind before it is dropped with a close reason.
    #[arg(long, env = "HANDOFFRAIL_LIVE_BUFFER", default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..))]
    pub live_buffer: u32,
}

/// Webhook delivery (docs/api.md decisions 1 and 2).
#[derive(Clone, Debug, clap::Args)]
pub struct WebhookConfig {
    /// Hosts a webhook may reach although they are internal (loopback, private, link-local), comma-separated
    /// names or addresses, e.g. a receiver on this machine.
    #[arg(long, env = "HANDOFFRAIL_ALLOWED_WEBHOOK_HOSTS", value_delimiter = ',')]
    pub allowed_webhook_hosts: Vec<String>,
    /// Waits before each retry of a failed delivery; after the last retry fails it is a dead letter.
    #[arg(
        long,
        env = "HANDOFFRAIL_WEBHOOK_RETRY_SCHEDULE",
        default_value = "1s,5s,30s,5m,1h,6h"
    )]
    pub webhook_retry_schedule: RetrySchedule,
    /// Seconds an attempt may take, connection included.
    #[arg(long, env = "HANDOFFRAIL_WEBHOOK_TIMEOUT", default_value_t = 10.0)]
    pub webhook_timeout: f64,
    /// Attempts in flight at once in this process.
    #[arg(long, env = "HANDOFFRAIL_WEBHOOK_CONCURRENCY", default_value_t = 32)]
    pub webhook_concurrency: usize,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            allowed_webhook_hosts: Vec::new(),
            webhook_retry_schedule: RetrySchedule::default(),
            webhook_timeout: 10.0,
            webhook_concurrency: 32,
        }
    }
}

impl WebhookConfig {
    pub fn timeout(&self) -> Duration {
        Duration::try_from_secs_f64(self.webhook_timeout)
            .ok()
            .filter(|timeout| !timeout.is_zero())
            .unwrap_or(Duration::from_secs(10))
    }
}

/// Caps and deadlines of every listener (API and proxy alike).
#[derive(Clone, Debug, clap::Args)]
pub struct ConnectionConfig {
    /// Open connections per listener; one more is answered 503 and closed [default: 10000, or less when the
    /// open-files limit cannot hold that many]
    #[arg(long, env = "HANDOFFRAIL_MAX_CONNECTIONS", default_value_t = ConnectionLimits::default().max_connections)]
    pub max_connections: usize,
    /// Seconds a client has to send a request head; a kept-alive connection that sends nothing for this long
    /// is closed.
    #[arg(long, env = "HANDOFFRAIL_HEADER_TIMEOUT", default_value_t = 10.0)]
    pub header_timeout: f64,
    /// Seconds without a byte in either direction before a connection or CONNECT tunnel is closed.
    #[arg(long, env = "HANDOFFRAIL_IDLE_TIMEOUT", default_value_t = 120.0)]
    pub idle_timeout: f64,
    /// Seconds an agent has to finish the TLS handshake inside a CONNECT tunnel.
    #[arg(
        long,
        env = "HANDOFFRAIL_TLS_HANDSHAKE_TIMEOUT",
        default_value_t = 10.0
    )]
    pub tls_handshake_timeout: f64,
}

impl ConnectionConfig {
    pub fn limits(&self) -> ConnectionLimits {
        let defaults = ConnectionLimits::default();
        let seconds =
            |value: f64, default: Duration| Duration::try_from_secs_f64(value).unwrap_or(default);
        ConnectionLimits {
            max_connections: self.max_connections.max(1),
            header_timeout: seconds(self.header_timeout, defaults.header_timeout),
            idle_timeout: seconds(self.idle_timeout, defaults.idle_timeout),
            tls_handshake_timeout: seconds(
                self.tls_handshake_timeout,
                defaults.tls_handshake_timeout,
            ),
        }
    }
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        let limits = ConnectionLimits::default();
        ConnectionConfig {
            max_connections: limits.max_connections,
            header_timeout: limits.header_timeout.as_secs_f64(),
            idle_timeout: limits.idle_timeout.as_secs_f64(),
            tls_handshake_timeout: limits.tls_handshake_timeout.as_secs_f64(),
        }
    }
}

/// What one evaluation request may cost (docs/evaluator.md "Limits"): past a limit, the claims not yet
/// decided are ERROR `resource_limit`.
#[derive(Clone, Debug, clap::Args)]
pub struct EvaluationConfig {
    /// Steps per evaluation request: one per JSON node visited, selected or compared.
    #[arg(long, env = "HANDOFFRAIL_EVAL_MAX_STEPS", default_value_t = Limits::default().steps)]
    pub eval_max_steps: u64,
    /// Milliseconds of evaluation per request (after its evidence is loaded).
    #[arg(long, env = "HANDOFFRAIL_EVAL_TIMEOUT_MS", default_value_t = 2000)]
    pub eval_timeout_ms: u64,
    /// Longest JSONPath, in bytes.
    #[arg(long, env = "HANDOFFRAIL_EVAL_MAX_PATH_BYTES", default_value_t = Limits::default().path_bytes)]
    pub eval_max_path_bytes: usize,
    /// Deepest nesting of filters, parentheses and function calls in a JSONPath.
    #[arg(long, env = "HANDOFFRAIL_EVAL_MAX_PATH_DEPTH", default_value_t = Limits::default().path_depth)]
    pub eval_max_path_depth: usize,
    /// Response bytes of evidence one request may load (K/M/G suffixes); references past it are
    /// `resource_limit`.
    #[arg(long, env = "HANDOFFRAIL_EVAL_MAX_EVIDENCE", default_value = "8MiB", value_parser = parse_size)]
    pub eval_max_evidence: u64,
    /// Evaluations run at once (larger ones each on a thread of its own); more wait their turn [default: CPU cores].
    #[arg(long, env = "HANDOFFRAIL_EVAL_CONCURRENCY")]
    pub eval_concurrency: Option<usize>,
}

impl EvaluationConfig {
    pub fn limits(&self) -> Limits {
        Limits {
            steps: self.eval_max_steps,
            time: Duration::from_millis(self.eval_timeout_ms),
            path_bytes: self.eval_max_path_bytes,
            path_depth: self.eval_max_path_depth,
            ..Limits::default()
        }
    }

    pub fn concurrency(&self) -> usize {
        self.eval_concurrency
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |cores| cores.get()))
            .max(1)
    }
}

impl Default for EvaluationConfig {
    fn default() -> Self {
        let limits = Limits::default();
        EvaluationConfig {
            eval_max_steps: limits.steps,
            eval_timeout_ms: limits.time.as_millis() as u64,
            eval_max_path_bytes: limits.path_bytes,
            eval_max_path_depth: limits.path_depth,
            eval_max_evidence: crate::evaluations::DEFAULT_MAX_EVIDENCE,
            eval_concurrency: None,
        }
    }
}

/// Tiers and rate limits (docs/api.md §5.4–5.5, docs/api.md decision 5). Per-tier values are written
/// `free=A,pro=B,business=C`; a zero turns that limit off for the tier.
#[derive(Clone, Debug, clap::Args)]
pub struct LimitConfig {
    /// Count nothing: no minute, hour or daily limits (for benchmarks). Body-size limits still apply.
    #[arg(long = "no-rate-limits", env = "HANDOFFRAIL_NO_RATE_LIMITS")]
    pub no_rate_limits: bool,
    /// Requests per key in any 60 seconds (every tier; 0: no minute limit).
    #[arg(long, env = "HANDOFFRAIL_RATE_LIMIT_PER_MINUTE", default_value_t = 60)]
    pub rate_limit_per_minute: u64,
    /// Requests per tenant and clock hour, by the requesting key's tier.
    #[arg(
        long,
        env = "HANDOFFRAIL_RATE_LIMIT_PER_HOUR",
        default_value = "free=100,pro=1000,business=10000"
    )]
    pub rate_limit_per_hour: TierTable,
    /// Packet creates per tenant and UTC day, by the requesting key's tier (a batch counts once; 0: no cap).
    #[arg(
        long,
        env = "HANDOFFRAIL_DAILY_CREATE_LIMIT",
        default_value = "free=5,pro=0,business=0"
    )]
    pub daily_create_limit: TierTable,
    /// Largest request body by tier, counted on the bytes received (K/M suffixes: KiB/MiB).
    #[arg(long, env = "HANDOFFRAIL_MAX_BODY", default_value = "free=64K,pro=256K,business=1M", value_parser = parse_body_limits)]
    pub max_body: TierTable,
}

impl LimitConfig {
    pub fn settings(&self) -> LimitSettings {
        LimitSettings {
            enabled: !self.no_rate_limits,
            per_minute: self.rate_limit_per_minute,
            per_hour: self.rate_limit_per_hour,
            daily_creates: self.daily_create_limit,
        }
    }
}

impl Default for LimitConfig {
    fn default() -> Self {
        let settings = LimitSettings::default();
        Self {
            no_rate_limits: false,
            rate_limit_per_minute: settings.per_minute,
            rate_limit_per_hour: settings.per_hour,
            daily_create_limit: settings.daily_creates,
            max_body: TierTable {
                free: 64 << 10,
                pro: 256 << 10,
                business: 1 << 20,
            },
        }
    }
}

fn parse_body_limits(text: &str) -> Result<TierTable, String> {
    TierTable::parse_with(text, parse_size)
}

/// The interceptor proxy (docs/interceptor.md).
#[derive(Clone, Debug, clap::Args)]
pub struct ProxyConfig {
    /// Proxy port (0 picks a free one).
    #[arg(
        id = "proxy_port",
        long = "proxy-port",
        env = "HANDOFFRAIL_PROXY_PORT",
        default_value_t = 8081
    )]
    pub port: u16,
    /// Do not run the proxy.
    #[arg(long = "no-proxy", env = "HANDOFFRAIL_NO_PROXY")]
    pub disabled: bool,
    /// Bytes of each body (request and response) kept in a record; the rest streams through unrecorded and
    /// the record is marked truncated. Accepts K/M/G (KiB/MiB/GiB) suffixes.
    #[arg(long, env = "HANDOFFRAIL_RECORD_BODY_LIMIT", default_value = "10MiB", value_parser = parse_size)]
    pub record_body_limit: u64,
    /// Records waiting to be written before the proxy holds back responses until the database catches up
    /// (back-pressure; records are never dropped).
    #[arg(long, env = "HANDOFFRAIL_RECORD_QUEUE", default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..))]
    pub record_queue: u32,
    /// Seconds to wait for an upstream to connect and answer with headers before a 504.
    #[arg(long, env = "HANDOFFRAIL_UPSTREAM_TIMEOUT", default_value_t = 30.0)]
    pub upstream_timeout: f64,
    /// Extra PEM certificates trusted for upstream TLS, besides the webpki roots (private or test CAs).
    #[arg(long, env = "HANDOFFRAIL_UPSTREAM_CA")]
    pub upstream_ca: Option<PathBuf>,
    /// Refuse (403, no upstream connection) requests to destinations that are not trusted endpoints.
    #[arg(long, env = "HANDOFFRAIL_BLOCK_UNTRUSTED")]
    pub block_untrusted: bool,
    /// Tunnel CONNECT blindly instead of terminating TLS (nothing inside a tunnel is recorded).
    #[arg(long, env = "HANDOFFRAIL_NO_MITM")]
    pub no_mitm: bool,
}

impl ProxyConfig {
    pub fn upstream_timeout(&self) -> Duration {
        Duration::try_from_secs_f64(self.upstream_timeout).unwrap_or(Duration::from_secs(30))
    }
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            port: 8081,
            disabled: false,
            record_body_limit: 10 * 1024 * 1024,
            record_queue: 4096,
            upstream_timeout: 30.0,
            upstream_ca: None,
            block_untrusted: false,
            no_mitm: false,
        }
    }
}

/// `1048576`, `64K`, `10MiB`, `1G`: binary units.
fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size like 10MiB"))?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => return Err(format!("unknown size unit {other:?} (use K, M or G)")),
    };
    number
        .checked_mul(scale)
        .ok_or_else(|| format!("{text:?} is too large"))
}

impl ServeConfig {
    /// Defaults for a server whose data lives in `data_dir` (used by tests and tools).
    pub fn with_data_dir(data_dir: PathBuf) -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 0,
            database_url: None,
            data_dir,
            log_format: LogFormat::Pretty,
            sqlite_synchronous: SqliteSynchronous::Normal,
            db_max_connections: 16,
            default_tier: Tier::Business,
            packet_ttl_seconds: 86_400,
            expiry_interval_seconds: 60,
            key_cache_seconds: 5,
            rules: None,
            admin_key: None,
            environment: "production".into(),
            limits: LimitConfig::default(),
            evaluation: EvaluationConfig::default(),
            connections: ConnectionConfig::default(),
            proxy: ProxyConfig {
                port: 0,
                ..ProxyConfig::default()
            },
            webhooks: WebhookConfig::default(),
            live_connections: TierTable {
                free: 1,
                pro: 5,
                business: 25,
            },
            live_heartbeat_seconds: 30,
            live_buffer: 4096,
        }
    }

    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| default_database_url(&self.data_dir))
    }

    /// The rules directory to load: the one given, else `./rules` when present.
    pub fn rules_dir(&self) -> Option<PathBuf> {
        self.rules
            .clone()
            .or_else(|| Some(PathBuf::from("rules")).filter(|dir| dir.is_dir()))
    }

    pub fn store_options(&self) -> StoreOptions {
        StoreOptions {
            sqlite_synchronous: self.sqlite_synchronous,
            max_connections: self.db_max_connections,
            live_buffer: self.live_buffer as usize,
            delivery_lease: crate::webhooks::fresh::lease(self.webhooks.timeout()),
        }
    }

    pub fn packet_ttl(&self) -> Duration {
        Duration::from_secs(self.packet_ttl_seconds)
    }

    pub fn expiry_interval(&self) -> Duration {
        Duration::from_secs(self.expiry_interval_seconds.max(1))
    }
}

pub fn default_database_url(data_dir: &std::path::Path) -> String {
    format!("sqlite://{}", data_dir.join("handoffrail.db").display())
}

#[cfg(test)]
mod tests {
    use super::{parse_body_limits, parse_size, LimitConfig, ServeConfig};
    use clap::Parser;

    #[test]
    fn sizes_take_binary_units() {
        for (text, bytes) in [
            ("1048576", 1 << 20),
            ("64K", 64 << 10),
            ("10MiB", 10 << 20),
            ("10 mb", 10 << 20),
            ("1G", 1 << 30),
            ("0", 0),
        ] {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
        for bad in ["", "ten", "10X", "99999999999999999999G", "-1"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn body_limits_take_sizes_per_tier() {
        let table = parse_body_limits("free=64K,pro=256K,business=1M").expect("parses");
        assert_eq!(
            (table.free, table.pro, table.business),
            (64 << 10, 256 << 10, 1 << 20)
        );
        assert_eq!(
            table,
            LimitConfig::default().max_body,
            "the flag's default is the documented one"
        );
        assert!(parse_body_limits("free=64K,pro=1X,business=1M").is_err());
    }

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        serve: ServeConfig,
    }

    #[test]
    fn limit_flags_become_settings() {
        let parsed = Command::try_parse_from([
            "serve",
            "--rate-limit-per-minute",
            "0",
            "--rate-limit-per-hour",
            "free=1,pro=2,business=3",
            "--daily-create-limit",
            "free=7,pro=0,business=0",
        ])
        .expect("parses");
        let settings = parsed.serve.limits.settings();
        assert!(settings.enabled);
        assert_eq!(settings.per_minute, 0);
        assert_eq!(settings.per_hour.get(crate::auth::Tier::Pro), 2);
        assert_eq!(settings.daily_creates.free, 7);
        let off = Command::try_parse_from(["serve", "--no-rate-limits"]).expect("parses");
        assert!(!off.serve.limits.settings().enabled);
        let defaults = Command::try_parse_from(["serve"]).expect("parses");
        assert_eq!(
            defaults.serve.limits.settings(),
            crate::auth::limits::LimitSettings::default()
        );
    }
}
