//! Webhook deliveries are as durable as the packet changes that wrote them: a server killed with SIGKILL while
//! 200 wait for a receiver that is down sends all 200 after its restart; and two instances on one PostgreSQL
//! share the outbox, each event sent once.

use crate::on_both_backends;
use crate::receiver::Receiver;
use crate::support::{
    fresh_database, init, notice_postgres_skipped, packet_body, postgres_url, start_binary_with,
    Backend, Process,
};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

on_both_backends!(pending_deliveries_survive_sigkill);

const SECRET: &str = "a-webhook-secret-of-some-length";

fn start(url: &str, dir: &std::path::Path, key: &str) -> Process {
    start_binary_with(
        url,
        dir,
        key,
        &[
            "--allowed-webhook-hosts",
            "127.0.0.1",
            "--webhook-retry-schedule",
            "300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms",
        ],
    )
}

async fn post(http: &reqwest::Client, base: &str, key: &str, path: &str, body: Value) -> Value {
    let response = http
        .post(format!("{base}{path}"))
        .header("X-API-Key", key)
        .json(&body)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::CREATED, "{path}");
    response.json().await.expect("JSON")
}

/// Packet ids of the deliveries received, with how many times each event id arrived.
fn arrivals(receiver: &Receiver) -> (HashSet<String>, HashMap<String, usize>) {
    let mut packets = HashSet::new();
    let mut events = HashMap::new();
    for received in receiver.received() {
        let body = received.json();
        packets.insert(body["packet_id"].as_str().expect("packet id").to_string());
        *events
            .entry(received.header("webhook-id").to_string())
            .or_insert(0) += 1;
        assert_eq!(body["id"], received.header("webhook-id"));
    }
    (packets, events)
}

async fn pending_deliveries_survive_sigkill(backend: Backend) {
    init();
    let dir = tempfile::TempDir::new().expect("dir");
    let database = fresh_database(backend, &dir).await;
    let key = handoffrail::auth::generate_key();
    // A port with nobody listening: every attempt is refused until the receiver starts there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port();
    let mut server = start(&database.url, dir.path(), &key);
    let http = reqwest::Client::new();
    post(
        &http,
        &server.base,
        &key,
        "/hooks",
        json!({"url": format!("http://127.0.0.1:{port}/in"), "events": ["packet.created"], "secret": SECRET}),
    )
    .await;
    let mut created = HashSet::new();
    for index in 0..200 {
        let packet = post(
            &http,
            &server.base,
            &key,
            "/packets",
            packet_body("a", "b", &format!("p{index}")),
        )
        .await;
        created.insert(packet["id"].as_str().expect("id").to_string());
    }
    // SAFETY: plain kill(2) on our own child's pid.
    assert_eq!(
        unsafe { libc::kill(server.child.id() as i32, libc::SIGKILL) },
        0
    );
    let _ = server.child.wait();

    let receiver = Receiver::start_at(port).await;
    let mut restarted = start(&database.url, dir.path(), &key);
    let received = receiver
        .wait_for(Duration::from_secs(60), |received| {
            received
                .iter()
                .map(|r| {
                    r.json()["packet_id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string()
                })
                .collect::<HashSet<_>>()
                .len()
                >= 200
        })
        .await;
    let (packets, events) = arrivals(&receiver);
    assert_eq!(
        packets, created,
        "every acknowledged create's webhook arrived"
    );
    assert_eq!(
        events.len(),
        200,
        "one event per packet; repeats only with the same webhook-id"
    );
    assert!(received.len() >= 200);
    let _ = restarted.child.kill();
    let _ = restarted.child.wait();
}

/// Two instances on one PostgreSQL, 500 packet events caused on both, no failures: every event arrives
/// exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_the_outbox_and_send_each_event_once() {
    if postgres_url().is_none() {
        notice_postgres_skipped();
        return;
    }
    init();
    let dir = tempfile::TempDir::new().expect("dir");
    let database = fresh_database(Backend::Postgres, &dir).await;
    let key = handoffrail::auth::generate_key();
    let mut a = start(&database.url, dir.path(), &key);
    let mut b = start(&database.url, dir.path(), &key);
    let receiver = Receiver::start().await;
    let http = reqwest::Client::new();
    let hook = post(
        &http,
        &a.base,
        &key,
        "/hooks",
        json!({"url": receiver.url("/in"), "events": ["packet.created", "packet.claimed"], "secret": SECRET}),
    )
    .await;
    let mut loaders = Vec::new();
    for loader in 0..10 {
        let (http, key, base) = (
            http.clone(),
            key.clone(),
            if loader % 2 == 0 {
                a.base.clone()
            } else {
                b.base.clone()
            },
        );
        loaders.push(tokio::spawn(async move {
            for index in 0..25 {
                let packet = post(
                    &http,
                    &base,
                    &key,
                    "/packets",
                    packet_body("a", "b", &format!("{loader}-{index}")),
                )
                .await;
                let id = packet["id"].as_str().expect("id");
                let claimed = http
                    .post(format!("{base}/packets/{id}/claim"))
                    .header("X-API-Key", &key)
                    .json(&json!({"agent_id": "b", "agent_name": "B"}))
                    .send()
                    .await
                    .expect("claim");
                assert_eq!(claimed.status(), StatusCode::OK);
            }
        }));
    }
    for loader in loaders {
        loader.await.expect("loader");
    }
    receiver.wait_for_count(500).await;
    // Every delivery recorded as delivered at its first attempt (an attempt is counted when a worker takes the
    // row, so a second send would show as attempts 2): nothing more can be on its way.
    let hook_id = hook["id"].as_str().expect("id");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut rows = Vec::new();
        for offset in [0, 200, 400] {
            let page: Vec<Value> = http
                .get(format!(
                    "{}/hooks/{hook_id}/deliveries?limit=200&offset={offset}",
                    b.base
                ))
                .header("X-API-Key", &key)
                .send()
                .await
                .expect("deliveries")
                .json()
                .await
                .expect("list");
            rows.extend(page);
        }
        assert_eq!(rows.len(), 500);
        if rows.iter().all(|row| row["status"] == "delivered") {
            assert!(
                rows.iter().all(|row| row["attempts"] == 1),
                "a delivery was attempted twice"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "deliveries never all recorded"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, events) = arrivals(&receiver);
    assert_eq!(events.len(), 500, "500 distinct events");
    let repeated: Vec<_> = events.iter().filter(|(_, count)| **count > 1).collect();
    assert!(repeated.is_empty(), "events sent twice: {repeated:?}");
    for server in [&mut a, &mut b] {
        let _ = server.child.kill();
        let _ = server.child.wait();
    }
}
