//! Concurrent clients: claims are exactly-once, on one instance and on two instances sharing a database.

use crate::on_both_backends;
use crate::support::{packet_body, spawn_app, spawn_app_with, AppOptions, Backend, TestApp};
use reqwest::StatusCode;
use serde_json::json;
use std::sync::Arc;

on_both_backends!(
    twenty_five_concurrent_claims_have_one_winner,
    two_instances_on_one_database_claim_exactly_once,
    concurrent_lifecycles_all_complete,
);

async fn race_claims(
    apps: &[Arc<TestApp>],
    pid: &str,
    claimers: usize,
) -> (usize, usize, Vec<String>) {
    let barrier = Arc::new(tokio::sync::Barrier::new(claimers));
    let mut tasks = Vec::new();
    for index in 0..claimers {
        let app = apps[index % apps.len()].clone();
        let barrier = barrier.clone();
        let path = format!("/packets/{pid}/claim");
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let body = json!({"agent_id": format!("agent-{index}"), "agent_name": "racer"});
            let reply = app.post(&path, body).await;
            (reply.status, reply.body)
        }));
    }
    let (mut won, mut conflicts, mut winners) = (0, 0, Vec::new());
    for task in tasks {
        let (status, body) = task.await.expect("claim task");
        match status {
            StatusCode::OK => {
                won += 1;
                winners.push(
                    body["metadata"]["target_agent"]["id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                );
            }
            StatusCode::CONFLICT => conflicts += 1,
            other => panic!("unexpected status {other}: {body}"),
        }
    }
    (won, conflicts, winners)
}

async fn twenty_five_concurrent_claims_have_one_winner(backend: Backend) {
    let app = Arc::new(spawn_app(backend).await);
    let pid = app.create_packet(packet_body("a", "b", "contested")).await["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (won, conflicts, winners) = race_claims(std::slice::from_ref(&app), &pid, 25).await;
    assert_eq!((won, conflicts), (1, 24));
    let stored = app.get(&format!("/packets/{pid}")).await;
    assert_eq!(
        stored.body["metadata"]["target_agent"]["id"], winners[0],
        "the stored claimant is the winner"
    );
    let history = app.get(&format!("/packets/{pid}/history")).await;
    let claims = history.body["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|event| event["event_type"] == "claimed")
        .count();
    assert_eq!(claims, 1, "exactly one claim event");
}

async fn two_instances_on_one_database_claim_exactly_once(backend: Backend) {
    let first = Arc::new(spawn_app(backend).await);
    let second = Arc::new(
        spawn_app_with(
            backend,
            AppOptions {
                database_url: Some(first.database_url.clone()),
                ..Default::default()
            },
        )
        .await,
    );
    for round in 0..3 {
        let pid = first
            .create_packet(packet_body("a", "b", &format!("round {round}")))
            .await["id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let visible = second
            .send(
                reqwest::Method::GET,
                &format!("/packets/{pid}"),
                Some(&first.admin_key),
                None,
            )
            .await;
        assert_eq!(
            visible.status,
            StatusCode::OK,
            "the second instance sees the first one's packet"
        );
        let (won, conflicts, _) = race_claims(&[first.clone(), second.clone()], &pid, 24).await;
        assert_eq!((won, conflicts), (1, 23), "round {round}");
    }
}

async fn concurrent_lifecycles_all_complete(backend: Backend) {
    let app = Arc::new(spawn_app(backend).await);
    let mut tasks = Vec::new();
    for worker in 0..20 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let pid = app
                .create_packet(packet_body("src", &format!("w{worker}"), "job"))
                .await["id"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let claim = app
                .post(
                    &format!("/packets/{pid}/claim"),
                    json!({"agent_id": format!("w{worker}"), "agent_name": "W"}),
                )
                .await;
            assert_eq!(claim.status, StatusCode::OK);
            for status in ["in_progress", "completed"] {
                let reply = app
                    .patch(&format!("/packets/{pid}"), json!({"status": status}))
                    .await;
                assert_eq!(reply.status, StatusCode::OK, "{status}: {}", reply.text);
            }
            pid
        }));
    }
    for task in tasks {
        let pid = task.await.expect("lifecycle task");
        let history = app.get(&format!("/packets/{pid}/history")).await;
        assert_eq!(history.body["events"].as_array().map(Vec::len), Some(4));
    }
    let done = app.get("/packets?status=completed&limit=200").await;
    assert_eq!(done.body["total"], 20);
}
