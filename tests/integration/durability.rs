//! A server killed with SIGKILL in the middle of a create loop loses no packet it acknowledged, and in the
//! middle of proxy load no record whose response it completed.

use crate::on_both_backends;
use crate::support::{fresh_database, init, packet_body, start_binary as start, Backend};
use reqwest::StatusCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

on_both_backends!(
    acknowledged_creates_survive_sigkill,
    acknowledged_records_survive_sigkill_under_proxy_load,
);

/// Three rounds: load through the proxy, SIGKILL, restart on the same database and data directory; every
/// record id that came with a complete response must be stored. (The hardening issue measured 0.4–9.5 % of
/// them lost when the id was sent before its record was written.)
async fn acknowledged_records_survive_sigkill_under_proxy_load(backend: Backend) {
    init();
    let upstream = crate::upstream::spawn_upstream().await;
    let dir = tempfile::TempDir::new().expect("dir");
    let database = fresh_database(backend, &dir).await;
    let url = database.url.clone();
    let admin_key = handoffrail::auth::generate_key();
    let mut acknowledged = Vec::<String>::new();
    for round in 0..3 {
        let mut server = start(&url, dir.path(), &admin_key);
        let proxy = reqwest::Proxy::http(format!("http://{}", server.proxy))
            .expect("proxy")
            .basic_auth("loader", &admin_key);
        let http = reqwest::Client::builder()
            .proxy(proxy)
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        let ids = Arc::new(Mutex::new(Vec::<String>::new()));
        let mut loaders = Vec::new();
        for loader in 0..16 {
            let (http, url, ids) = (
                http.clone(),
                upstream.url(&format!("/echo/{round}/{loader}")),
                ids.clone(),
            );
            loaders.push(tokio::spawn(async move {
                loop {
                    let Ok(response) = http.get(&url).send().await else {
                        break;
                    };
                    let id = response
                        .headers()
                        .get("x-handoffrail-record")
                        .and_then(|value| value.to_str().ok())
                        .map(String::from);
                    // Acknowledged = the whole response arrived, with its record id.
                    if response.bytes().await.is_err() {
                        break;
                    }
                    if let Some(id) = id {
                        ids.lock().expect("lock").push(id);
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        // SAFETY: plain kill(2) on our own child's pid.
        assert_eq!(
            unsafe { libc::kill(server.child.id() as i32, libc::SIGKILL) },
            0
        );
        let _ = server.child.wait();
        for loader in loaders {
            let _ = loader.await;
        }
        let ids = ids.lock().expect("lock").clone();
        assert!(
            ids.len() > 50,
            "round {round}: the load made progress ({} records)",
            ids.len()
        );
        acknowledged.extend(ids);
    }
    let mut restarted = start(&url, dir.path(), &admin_key);
    // Anything a killed process left in the spool is replayed by the new one.
    crate::support::wait_for_empty_spool(dir.path()).await;
    let store = handoffrail::store::open(&url, &Default::default())
        .await
        .expect("store");
    let mut missing = Vec::new();
    for id in &acknowledged {
        let id = uuid::Uuid::parse_str(id).expect("record id");
        if store
            .get_record("default", id)
            .await
            .expect("read")
            .is_none()
        {
            missing.push(id);
        }
    }
    let _ = restarted.child.kill();
    let _ = restarted.child.wait();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged records lost: {missing:?}",
        missing.len(),
        acknowledged.len()
    );
}

async fn acknowledged_creates_survive_sigkill(backend: Backend) {
    init();
    let dir = tempfile::TempDir::new().expect("dir");
    let database = fresh_database(backend, &dir).await;
    let url = database.url.clone();
    let admin_key = handoffrail::auth::generate_key();
    let mut server = start(&url, dir.path(), &admin_key);
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let mut writers = Vec::new();
    for writer in 0..4 {
        let (http, base, key, acknowledged) = (
            http.clone(),
            server.base.clone(),
            admin_key.clone(),
            acknowledged.clone(),
        );
        writers.push(tokio::spawn(async move {
            for index in 0.. {
                let body = packet_body("loop", "sink", &format!("writer {writer} packet {index}"));
                let Ok(response) = http
                    .post(format!("{base}/packets"))
                    .header("X-API-Key", &key)
                    .json(&body)
                    .send()
                    .await
                else {
                    break;
                };
                if response.status() != StatusCode::CREATED {
                    break;
                }
                let Ok(packet) = response.json::<serde_json::Value>().await else {
                    break;
                };
                if let Some(id) = packet["id"].as_str() {
                    acknowledged.lock().expect("lock").push(id.to_string());
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // SAFETY: plain kill(2) on our own child's pid.
    let killed = unsafe { libc::kill(server.child.id() as i32, libc::SIGKILL) };
    assert_eq!(killed, 0, "SIGKILL sent");
    let _ = server.child.wait();
    for writer in writers {
        let _ = writer.await;
    }
    let acknowledged = acknowledged.lock().expect("lock").clone();
    assert!(
        acknowledged.len() > 20,
        "the loop made progress before the kill ({} creates)",
        acknowledged.len()
    );

    let mut restarted = start(&url, dir.path(), &admin_key);
    let mut missing = Vec::new();
    for id in &acknowledged {
        let response = http
            .get(format!("{}/packets/{id}", restarted.base))
            .header("X-API-Key", &admin_key)
            .send()
            .await
            .expect("get after restart");
        if response.status() != StatusCode::OK {
            missing.push(id.clone());
        }
    }
    let _ = restarted.child.kill();
    let _ = restarted.child.wait();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged packets lost: {missing:?}",
        missing.len(),
        acknowledged.len()
    );
}

/// SIGTERM stops accepting, lets in-flight requests finish and exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_and_exits_cleanly() {
    init();
    let dir = tempfile::TempDir::new().expect("dir");
    let database = fresh_database(Backend::Sqlite, &dir).await;
    let url = database.url.clone();
    let admin_key = handoffrail::auth::generate_key();
    let mut server = start(&url, dir.path(), &admin_key);
    let http = reqwest::Client::new();
    let created = http
        .post(format!("{}/packets", server.base))
        .header("X-API-Key", &admin_key)
        .json(&packet_body("a", "b", "before shutdown"))
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), StatusCode::CREATED);
    // SAFETY: plain kill(2) on our own child's pid.
    assert_eq!(
        unsafe { libc::kill(server.child.id() as i32, libc::SIGTERM) },
        0
    );
    let status = tokio::task::spawn_blocking(move || {
        let status = server.child.wait();
        (status, server.log)
    })
    .await
    .expect("wait task");
    let (status, log) = status;
    assert!(
        status.expect("exit status").success(),
        "exit 0 after SIGTERM"
    );
    let log = log.lock().expect("log lock").join("\n");
    assert!(log.contains("shutdown signal received"), "{log}");
    assert!(log.contains("handoffrail stopped"), "{log}");
}
