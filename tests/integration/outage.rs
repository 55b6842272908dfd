//! A PostgreSQL outage under proxy load, on a cluster this test starts itself (`initdb`/`pg_ctl` under a
//! temporary directory, never the shared server): `/ready` and the API answer 503 JSON at once while it is
//! down, the proxy keeps serving with records spooled, HandoffRail recovers without a restart, and every
//! record whose response completed is in the database afterwards. The outage lasts
//! `HANDOFFRAIL_TEST_OUTAGE_SECONDS` (default 8; the closing measurement used 60).

use crate::support::{init, notice_postgres_skipped, postgres_url, start_binary};
use reqwest::StatusCode;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A throwaway PostgreSQL cluster, run as the `postgres` user when the tests run as root.
struct Cluster {
    _dir: tempfile::TempDir,
    data: PathBuf,
    bin: PathBuf,
    port: u16,
}

impl Cluster {
    fn start() -> Cluster {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL server binaries under /usr/lib/postgresql")
            .filter_map(Result::ok)
            .map(|entry| entry.path().join("bin"))
            .find(|bin| bin.join("initdb").exists())
            .expect("initdb");
        let dir = tempfile::TempDir::new().expect("dir");
        let data = dir.path().join("data");
        give_to_postgres(dir.path());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("free port")
            .port();
        let cluster = Cluster {
            _dir: dir,
            data,
            bin,
            port,
        };
        cluster.run(
            "initdb",
            &["-D", &cluster.data_text(), "-A", "trust", "-U", "postgres"],
        );
        cluster.up();
        cluster
    }

    fn data_text(&self) -> String {
        self.data.display().to_string()
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let mut command = if unsafe { libc::geteuid() } == 0 {
            let mut command = Command::new("runuser");
            command
                .args(["-u", "postgres", "--"])
                .arg(self.bin.join(tool));
            command
        } else {
            Command::new(self.bin.join(tool))
        };
        let output = command.args(args).output().expect("PostgreSQL tool runs");
        assert!(
            output.status.success(),
            "{tool} {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn up(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.data.parent().unwrap_or(Path::new("/tmp")).display()
        );
        let log = self
            .data
            .parent()
            .unwrap_or(Path::new("/tmp"))
            .join("postgres.log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data_text(),
                "-l",
                &log.display().to_string(),
                "-o",
                &options,
                "-w",
                "start",
            ],
        );
    }

    fn down(&self) {
        self.run(
            "pg_ctl",
            &["-D", &self.data_text(), "-m", "fast", "-w", "stop"],
        );
    }

    fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(if unsafe { libc::geteuid() } == 0 {
            "runuser"
        } else {
            "true"
        })
        .args(["-u", "postgres", "--"])
        .arg(self.bin.join("pg_ctl"))
        .args(["-D", &self.data_text(), "-m", "immediate", "stop"])
        .output();
    }
}

/// The cluster's directory must belong to the user the server runs as.
fn give_to_postgres(dir: &Path) {
    if unsafe { libc::geteuid() } != 0 {
        return;
    }
    let id = |flag: &str| -> u32 {
        let output = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .expect("id");
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .expect("numeric id")
    };
    std::os::unix::fs::chown(dir, Some(id("-u")), Some(id("-g"))).expect("chown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_outage_under_proxy_load_loses_no_acknowledged_record() {
    if postgres_url().is_none() {
        notice_postgres_skipped();
        return;
    }
    init();
    let outage = std::env::var("HANDOFFRAIL_TEST_OUTAGE_SECONDS")
        .ok()
        .and_then(|seconds| seconds.parse().ok())
        .unwrap_or(8u64);
    let cluster = Cluster::start();
    let mut admin = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&cluster.url("postgres"))
        .await
        .expect("the test cluster answers");
    sqlx::query("CREATE DATABASE outage")
        .execute(&admin)
        .await
        .expect("database");
    admin.close().await;
    admin = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_lazy(&cluster.url("outage"))
        .expect("pool");
    let url = cluster.url("outage");
    let upstream = crate::upstream::spawn_upstream().await;
    let dir = tempfile::TempDir::new().expect("dir");
    let key = handoffrail::auth::generate_key();
    let mut server = start_binary(&url, dir.path(), &key);
    let api = server.base.clone();
    let root = api.trim_end_matches("/api/v1").to_string();

    let proxy = reqwest::Proxy::http(format!("http://{}", server.proxy))
        .expect("proxy")
        .basic_auth("loader", &key);
    let through = reqwest::Client::builder()
        .proxy(proxy)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut loaders = Vec::new();
    for loader in 0..8 {
        let (client, url, acknowledged, stop) = (
            through.clone(),
            upstream.url(&format!("/echo/outage/{loader}")),
            acknowledged.clone(),
            stop.clone(),
        );
        loaders.push(tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let Ok(response) = client.get(&url).send().await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let id = response
                    .headers()
                    .get("x-handoffrail-record")
                    .and_then(|value| value.to_str().ok())
                    .map(String::from);
                if response.bytes().await.is_ok() {
                    acknowledged.lock().expect("lock").extend(id);
                }
            }
        }));
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = acknowledged.lock().expect("lock").len();
    assert!(before > 0, "the load runs before the outage");

    cluster.down();
    // /ready says so, and the API refuses at once with a JSON 503 (not after the pool's acquire timeout).
    let mut not_ready = false;
    for _ in 0..20 {
        let ready = http
            .get(format!("{root}/ready"))
            .send()
            .await
            .expect("ready answers");
        if ready.status() == StatusCode::SERVICE_UNAVAILABLE {
            let body: Value = ready.json().await.expect("JSON");
            assert_eq!(body["status"], "not_ready");
            not_ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(not_ready, "/ready answers 503 while the database is down");
    let refused = http
        .get(format!("{api}/packets"))
        .header("X-API-Key", &key)
        .send()
        .await
        .expect("answered");
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        refused
            .headers()
            .get("retry-after")
            .map(|value| value.as_bytes()),
        Some(&b"1"[..])
    );
    let body: Value = refused.json().await.expect("JSON");
    assert_eq!(body["detail"], "The database is unavailable; retry shortly");
    let during_start = acknowledged.lock().expect("lock").len();
    tokio::time::sleep(Duration::from_secs(outage)).await;
    let during = acknowledged.lock().expect("lock").len() - during_start;
    // Keys and trust lists as last seen, records spooled: the proxy keeps serving at a useful rate.
    assert!(
        during >= 10 * outage as usize,
        "the proxy kept serving during the outage ({during} responses in {outage} s)"
    );

    cluster.up();
    let mut recovered = false;
    for _ in 0..60 {
        let ready = http
            .get(format!("{root}/ready"))
            .send()
            .await
            .expect("ready answers");
        if ready.status() == StatusCode::OK {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(recovered, "HandoffRail recovers without a restart");
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for loader in loaders {
        let _ = loader.await;
    }
    // The spool drains into the database.
    crate::support::wait_for_empty_spool(dir.path()).await;
    let acknowledged = acknowledged.lock().expect("lock").clone();
    let ids: Vec<uuid::Uuid> = acknowledged
        .iter()
        .map(|id| uuid::Uuid::parse_str(id).expect("record id"))
        .collect();
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM records WHERE id = ANY($1)")
        .bind(&ids)
        .fetch_one(&admin)
        .await
        .expect("count");
    let _ = server.child.kill();
    let _ = server.child.wait();
    assert_eq!(
        stored as usize,
        ids.len(),
        "every acknowledged record is stored ({} acknowledged, {during} during a {outage} s outage)",
        ids.len()
    );
    eprintln!(
        "outage: {} records acknowledged, {during} of them during a {outage} s outage; all {stored} stored",
        ids.len()
    );
}
