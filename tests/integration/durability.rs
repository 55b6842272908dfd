//! A server killed with SIGKILL in the middle of a create loop loses no packet it acknowledged.

use crate::on_both_backends;
use crate::support::{fresh_database, init, packet_body, start_binary as start, Backend};
use reqwest::StatusCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

on_both_backends!(acknowledged_creates_survive_sigkill);

async fn acknowledged_creates_survive_sigkill(backend: Backend) {
    init();
    let dir = tempfile::TempDir::new().expect("dir");
    let url = fresh_database(backend, &dir).await;
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
    let url = fresh_database(Backend::Sqlite, &dir).await;
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
