//! Operational endpoints: health, readiness (503 when the database is gone), Prometheus metrics, CORS.

use crate::on_both_backends;
use crate::support::{packet_body, postgres_url, spawn_app, spawn_app_with, AppOptions, Backend};
use reqwest::StatusCode;
use serde_json::json;
use sqlx::Connection;

on_both_backends!(
    health_and_ready_answer_without_a_key,
    metrics_count_requests_by_route_template,
    cors_reflects_the_origin
);

async fn health_and_ready_answer_without_a_key(backend: Backend) {
    let app = spawn_app(backend).await;
    let health =
        crate::support::into_reply(app.http.get(app.url("/health")).send().await.expect("sent"))
            .await;
    assert_eq!(
        (health.status, health.body),
        (
            StatusCode::OK,
            json!({"status": "ok", "service": "handoffrail"})
        )
    );
    let ready =
        crate::support::into_reply(app.http.get(app.url("/ready")).send().await.expect("sent"))
            .await;
    assert_eq!(
        (ready.status, ready.body),
        (
            StatusCode::OK,
            json!({"status": "ready", "service": "handoffrail", "db": true})
        )
    );
}

async fn metrics_count_requests_by_route_template(backend: Backend) {
    let app = spawn_app(backend).await;
    let pid = app.create_packet(packet_body("a", "b", "m")).await["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    app.get(&format!("/packets/{pid}")).await.succeeded();
    app.post(
        &format!("/packets/{pid}/claim"),
        json!({"agent_id": "b", "agent_name": "B"}),
    )
    .await
    .succeeded();
    let second_claim = app
        .post(
            &format!("/packets/{pid}/claim"),
            json!({"agent_id": "c", "agent_name": "C"}),
        )
        .await;
    assert_eq!(second_claim.status, reqwest::StatusCode::CONFLICT);
    let text = app.metrics().await;
    assert!(text.contains(r#"handoffrail_requests_total{method="GET",route="/api/v1/packets/{packet_id}",status="200"} 1"#), "{text}");
    assert!(text.contains(r#"handoffrail_requests_total{method="POST",route="/api/v1/packets/{packet_id}/claim",status="409"} 1"#));
    assert!(!text.contains(&pid), "raw ids never become labels");
    assert!(text.contains(
        r#"handoffrail_request_duration_seconds_count{method="POST",route="/api/v1/packets"} 1"#
    ));
    assert!(text.contains(r#"handoffrail_packets_created_total{tenant_id="default"} 1"#));
    assert!(text.contains(r#"handoffrail_claims_total{outcome="won"} 1"#));
    assert!(text.contains(r#"handoffrail_claims_total{outcome="refused"} 1"#));
}

async fn cors_reflects_the_origin(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app
        .http
        .request(reqwest::Method::OPTIONS, app.api("/packets"))
        .header("Origin", "https://dash.example")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "x-api-key,content-type")
        .send()
        .await
        .expect("preflight");
    assert!(response.status().is_success());
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://dash.example"
    );
    assert_eq!(
        response.headers()["access-control-allow-credentials"],
        "true"
    );
}

/// Readiness fails fast with 503 while PostgreSQL refuses connections, and recovers after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_is_503_while_the_database_is_unreachable() {
    let Some(base) = postgres_url() else {
        crate::support::notice_postgres_skipped();
        return;
    };
    let name = format!("hrready_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&base).await.expect("connect");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("create database");
    let url = match base.rsplit_once('/') {
        Some((server, rest)) => {
            let query = rest
                .split_once('?')
                .map(|(_, query)| format!("?{query}"))
                .unwrap_or_default();
            format!("{server}/{name}{query}")
        }
        None => panic!("unexpected postgres url"),
    };
    let app = spawn_app_with(
        Backend::Postgres,
        AppOptions {
            database_url: Some(url),
            ..Default::default()
        },
    )
    .await;
    let ready = || async { app.http.get(app.url("/ready")).send().await.expect("sent") };
    assert_eq!(ready().await.status(), StatusCode::OK);

    sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"))
        .execute(&mut admin)
        .await
        .expect("lock out");
    sqlx::query(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
    ))
    .execute(&mut admin)
    .await
    .expect("terminate");
    let started = std::time::Instant::now();
    let down = ready().await;
    assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(8),
        "readiness answers promptly"
    );
    let body: serde_json::Value = down.json().await.expect("json");
    assert_eq!(
        body,
        json!({"status": "not_ready", "service": "handoffrail", "db": false})
    );
    let request = app.get("/packets").await;
    assert!(request.status.is_server_error());
    assert!(
        request.body["detail"].is_string(),
        "5xx bodies are JSON too: {}",
        request.text
    );

    sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
        .execute(&mut admin)
        .await
        .expect("let in");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while ready().await.status() != StatusCode::OK {
        assert!(
            std::time::Instant::now() < deadline,
            "readiness did not recover"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    app.stop().await;
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .expect("drop database");
}
