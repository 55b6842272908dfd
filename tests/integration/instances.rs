//! Two `serve` processes on one PostgreSQL database and one data directory (the record key): a packet is
//! claimed exactly once across them, and a record proxied by one is evidence on the other (for an evaluation and
//! for a verified handoff).

use crate::support::{
    fresh_database, init, notice_postgres_skipped, packet_body, postgres_url, start_binary, Backend,
};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_postgres_claim_once_and_share_evidence() {
    if postgres_url().is_none() {
        notice_postgres_skipped();
        return;
    }
    init();
    let upstream = crate::upstream::spawn_upstream().await;
    let dir = tempfile::TempDir::new().expect("dir");
    let database = fresh_database(Backend::Postgres, &dir).await;
    let url = database.url.clone();
    let key = handoffrail::auth::generate_key();
    let mut a = start_binary(&url, dir.path(), &key);
    let mut b = start_binary(&url, dir.path(), &key);
    let http = reqwest::Client::new();

    let created: Value = http
        .post(format!("{}/packets", a.base))
        .header("X-API-Key", &key)
        .json(&packet_body("a", "b", "raced"))
        .send()
        .await
        .expect("create on A")
        .json()
        .await
        .expect("packet");
    let id = created["id"].as_str().expect("id").to_string();
    let barrier = Arc::new(tokio::sync::Barrier::new(20));
    let mut racers = Vec::new();
    for index in 0..20 {
        let (http, base, key, id, barrier) = (
            http.clone(),
            if index % 2 == 0 {
                a.base.clone()
            } else {
                b.base.clone()
            },
            key.clone(),
            id.clone(),
            barrier.clone(),
        );
        racers.push(tokio::spawn(async move {
            barrier.wait().await;
            http.post(format!("{base}/packets/{id}/claim"))
                .header("X-API-Key", &key)
                .json(&json!({"agent_id": format!("agent-{index}"), "agent_name": "racer"}))
                .send()
                .await
                .map(|response| response.status())
        }));
    }
    let mut statuses = Vec::new();
    for racer in racers {
        statuses.push(racer.await.expect("task").expect("answered"));
    }
    let won = statuses
        .iter()
        .filter(|status| **status == StatusCode::OK)
        .count();
    let conflicts = statuses
        .iter()
        .filter(|status| **status == StatusCode::CONFLICT)
        .count();
    assert_eq!((won, conflicts), (1, 19), "{statuses:?}");

    // Evidence proxied by A, claimed on B.
    let proxy = reqwest::Proxy::http(format!("http://{}", a.proxy))
        .expect("proxy")
        .basic_auth("agent-a", &key);
    let through_a = reqwest::Client::builder()
        .proxy(proxy)
        .build()
        .expect("client");
    let response = through_a
        .get(upstream.url("/echo/shared"))
        .send()
        .await
        .expect("proxied by A");
    let record = response
        .headers()
        .get("x-handoffrail-record")
        .and_then(|value| value.to_str().ok())
        .expect("record id")
        .to_string();
    response.bytes().await.expect("acknowledged");
    let verdict: Value = http
        .post(format!("{}/evaluations", b.base))
        .header("X-API-Key", &key)
        .json(&json!({"claims": [{"action_name": "echo", "verification_mode": "exact",
                                  "json_path": "$.method", "claimed_value": "GET", "record_id": record}]}))
        .send()
        .await
        .expect("evaluate on B")
        .json()
        .await
        .expect("verdict");
    assert_eq!(verdict["outcome"], "PASS", "{verdict}");

    // A verified handoff created on B, its claims about the record A's proxy captured.
    for (claimed, status) in [("GET", "created"), ("DELETE", "awaiting_human")] {
        let mut body = packet_body("agent-a", "b", "verified across instances");
        body["verification"] = json!({"claims": [{"action_name": "echo", "verification_mode": "exact",
            "json_path": "$.method", "claimed_value": claimed, "record_id": record}]});
        let packet: Value = http
            .post(format!("{}/packets", b.base))
            .header("X-API-Key", &key)
            .json(&body)
            .send()
            .await
            .expect("create on B")
            .json()
            .await
            .expect("packet");
        assert_eq!(packet["status"], status, "{packet}");
        assert_eq!(
            packet["verification"]["per_claim"][0]["record_id"],
            json!(record)
        );
    }
    for process in [&mut a, &mut b] {
        let _ = process.child.kill();
        let _ = process.child.wait();
    }
}
