//! `GET /stats` (the caller's tenant) and `GET /system/health` (all tenants), admin only (docs/api.md §9.3–9.4).

use crate::on_both_backends;
use crate::support::{packet_body, spawn_app, spawn_app_with, AppOptions, Backend};
use reqwest::{Method, StatusCode};
use serde_json::json;

on_both_backends!(
    stats_count_the_tenants_packets_and_system_health_counts_all,
    system_health_reports_each_tenants_requests_this_hour,
);

async fn stats_count_the_tenants_packets_and_system_health_counts_all(backend: Backend) {
    let app = spawn_app(backend).await;
    let empty = app.get("/stats").await;
    assert_eq!(empty.status, StatusCode::OK, "{}", empty.text);
    assert_eq!(empty.body["total_packets"], 0);
    assert_eq!(
        empty.body["avg_claim_time_seconds"],
        serde_json::Value::Null
    );

    let mut ids = Vec::new();
    for n in 0..3 {
        let packet = app
            .create_packet(packet_body("a", "b", &format!("p{n}")))
            .await;
        ids.push(packet["id"].as_str().expect("id").to_string());
    }
    let mut hitl = packet_body("a", "b", "needs a human");
    hitl["hitl"] = json!({"required": true, "reason": "money", "question": "ok?"});
    app.create_packet(hitl).await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    app.post(
        &format!("/packets/{}/claim", ids[0]),
        json!({"agent_id": "w", "agent_name": "W"}),
    )
    .await
    .succeeded();
    let outsider = app.key("admin", Some("elsewhere")).await;
    let foreign = app
        .send(
            Method::POST,
            "/packets",
            Some(&outsider),
            Some(packet_body("x", "y", "theirs")),
        )
        .await;
    assert_eq!(foreign.status, StatusCode::CREATED);

    let stats = app.get("/stats").await;
    assert_eq!(stats.body["total_packets"], 4);
    assert_eq!(stats.body["packets_last_24h"], 4);
    assert_eq!(
        stats.body["packets_by_status"],
        json!({"created": 2, "claimed": 1, "awaiting_human": 1})
    );
    assert_eq!(stats.body["hitl_queue_depth"], 1);
    let claim_time = stats.body["avg_claim_time_seconds"]
        .as_f64()
        .expect("a claim happened");
    assert!(claim_time > 0.0 && claim_time < 60.0, "{claim_time}");

    let system = app.get("/system/health").await;
    assert_eq!(system.status, StatusCode::OK, "{}", system.text);
    assert_eq!(system.body["total_packets"], 5, "every tenant");
    assert_eq!(system.body["packets_created_last_1h"], 5);
    assert_eq!(system.body["packets_waiting"], 3);
    let expected_backend = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgresql",
    };
    assert_eq!(system.body["database_backend"], expected_backend);
    assert_eq!(system.body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        system.body["active_agents"], 2,
        "w holds the claim, b the checkpoint"
    );
    assert_eq!(
        system.body["total_agents_seen"], 5,
        "a, b, w (the claimant), x and y"
    );
    assert_eq!(
        system.body["top_agents"],
        json!([
            {"agent_id": "a", "packet_count": 4}, {"agent_id": "b", "packet_count": 3},
            {"agent_id": "w", "packet_count": 1}, {"agent_id": "x", "packet_count": 1},
            {"agent_id": "y", "packet_count": 1}
        ])
    );
    assert_eq!(system.body["claimed_not_completed"], 1);
    assert!(system.body["oldest_waiting_packet_age_seconds"]
        .as_f64()
        .is_some_and(|age| (0.0..60.0).contains(&age)));
    assert_eq!(
        system.body["active_api_keys"], 2,
        "the bootstrap admin and the outsider's key"
    );
    assert!(system.body["db_size_bytes"]
        .as_i64()
        .is_some_and(|size| size > 0));
    assert_eq!(
        system.body["connection_pool"].is_object(),
        backend == Backend::Postgres
    );
    assert_eq!(system.body["total_webhooks"], 0);
    assert_eq!(
        system.body["requests_last_1h_per_key"],
        json!({}),
        "limits are off in this suite"
    );
    assert_eq!(
        system.body["avg_time_to_complete_seconds"],
        serde_json::Value::Null
    );
    for status in ["in_progress", "completed"] {
        let moved = app
            .patch(&format!("/packets/{}", ids[0]), json!({"status": status}))
            .await;
        assert_eq!(moved.status, StatusCode::OK, "{}", moved.text);
    }
    let later = app.get("/system/health").await;
    assert_eq!(later.body["claimed_not_completed"], 0);
    let complete = later.body["avg_time_to_complete_seconds"]
        .as_f64()
        .expect("one completed");
    assert!((0.0..60.0).contains(&complete), "{complete}");

    let writer = app.key("writer", None).await;
    for path in ["/stats", "/system/health"] {
        let reply = app.send(Method::GET, path, Some(&writer), None).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{path}");
    }
}

async fn system_health_reports_each_tenants_requests_this_hour(backend: Backend) {
    let app = spawn_app_with(
        backend,
        AppOptions {
            configure: Box::new(|config| config.limits.no_rate_limits = false),
            ..Default::default()
        },
    )
    .await;
    let other = app.key("reader", Some("acme")).await;
    for _ in 0..3 {
        assert_eq!(
            app.send(Method::GET, "/packets", Some(&other), None)
                .await
                .status,
            StatusCode::OK
        );
    }
    let system = app.get("/system/health").await;
    assert_eq!(system.status, StatusCode::OK, "{}", system.text);
    assert_eq!(
        system.body["requests_last_1h_per_key"],
        json!({"acme": 3, "default": 2}),
        "the key's creation and this request for default"
    );
}
