//! Input both backends answer alike (the hardening issue's reproducers: PostgreSQL answered 500 where SQLite
//! stored): NUL characters and numbers past 1,000 decimal places are 422 everywhere, list parameters are
//! capped, a human's answer is written only by `respond`, endpoint templates are real URLs, and the
//! embedded database's files are private.

use crate::on_both_backends;
use crate::support::{packet_body, spawn_app, Backend};
use reqwest::StatusCode;
use serde_json::{json, Value};

on_both_backends!(
    nul_characters_are_refused_everywhere_alike,
    numbers_past_a_thousand_places_are_refused_alike,
    list_parameters_are_capped,
    a_patch_cannot_forge_the_humans_answer,
    endpoint_templates_must_name_a_real_host,
    embedded_database_files_are_private,
);

fn refused(reply: &crate::support::Reply, what: &str) {
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{what}: {}",
        reply.text
    );
}

async fn nul_characters_are_refused_everywhere_alike(backend: Backend) {
    let app = spawn_app(backend).await;
    let nul = "ab\u{0}cd";
    refused(
        &app.post("/keys", json!({"name": nul, "role": "reader"}))
            .await,
        "key name",
    );
    refused(
        &app.post("/tenants", json!({"name": nul})).await,
        "tenant name",
    );
    let mut packet = packet_body("a", "b", "summary");
    packet["context"]["custom"] = json!({"note": nul});
    let reply = app.post("/packets", packet).await;
    refused(&reply, "packet context");
    assert_eq!(
        reply.body["detail"][0]["loc"],
        json!(["body", "context", "custom", "note"])
    );
    assert!(reply.text.contains("NUL"), "{}", reply.text);
    let mut keyed = packet_body("a", "b", "summary");
    keyed["context"]["custom"] = json!({ nul: 1 });
    refused(&app.post("/packets", keyed).await, "a NUL in an object key");
    let har = json!({"log": {"version": "1.2", "creator": {"name": "t", "version": "1"}, "entries": [{
        "startedDateTime": "2026-11-21T10:00:00.000Z", "time": 1,
        "request": {"method": "GET", "url": "https://api.example.com/x", "headers": [{"name": "X-A", "value": nul}]},
        "response": {"status": 200, "headers": [], "content": {"mimeType": "application/json", "text": "{}"}}}]}});
    refused(&app.post("/records", har).await, "HAR header value");
    refused(
        &app.post("/evaluations", json!({"run_id": nul, "claims": []}))
            .await,
        "evaluation run_id",
    );
    refused(&app.get("/packets/search?q=ab%00cd").await, "search text");
    refused(&app.get("/packets?source_agent=a%00").await, "a filter");
    refused(&app.get("/tenants/a%00b").await, "a tenant id in the path");
    // Nothing was stored by any of them, and the server still serves.
    let packets = app.get("/packets").await;
    assert_eq!(packets.status, StatusCode::OK);
    assert_eq!(packets.body["total"], 0, "{}", packets.text);
}

async fn numbers_past_a_thousand_places_are_refused_alike(backend: Backend) {
    let app = spawn_app(backend).await;
    for number in ["1e1000000", "1e1001", "1.5e-1000", "-1e131072"] {
        let body = format!(
            r#"{{"metadata": {{"source_agent": {{"id": "a", "name": "A"}}, "target_agent": {{"id": "b", "name": "B"}}}},
                "context": {{"summary": "s", "custom": {{"amount": {number}}}}}}}"#
        );
        let reply = app
            .http
            .post(app.api("/packets"))
            .header("X-API-Key", &app.admin_key)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("sent");
        let status = reply.status();
        let text = reply.text().await.unwrap_or_default();
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{number}: {text}");
        assert!(text.contains("Number out of range"), "{number}: {text}");
    }
    // Large but storable numbers keep every digit on both backends.
    let mut packet = packet_body("a", "b", "summary");
    let exact: Value = serde_json::from_str("123456789012345678901234567890.000000000000000000001")
        .expect("number");
    packet["context"]["custom"] = json!({"amount": exact.clone(), "big": 1e300});
    let created = app.create_packet(packet).await;
    let read = app
        .get(&format!(
            "/packets/{}",
            created["id"].as_str().unwrap_or_default()
        ))
        .await;
    assert_eq!(
        read.body["context"]["custom"]["amount"].to_string(),
        exact.to_string()
    );
}

async fn list_parameters_are_capped(backend: Backend) {
    let app = spawn_app(backend).await;
    // SQLite answered 500 (expression tree too large) from 999 tags.
    let tags: Vec<String> = (0..1000).map(|i| format!("t{i}")).collect();
    let reply = app.get(&format!("/packets?tags={}", tags.join(","))).await;
    refused(&reply, "1,000 tags");
    let fifty = tags[..50].join(",");
    assert_eq!(
        app.get(&format!("/packets?tags={fifty}")).await.status,
        StatusCode::OK
    );
}

async fn a_patch_cannot_forge_the_humans_answer(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut body = packet_body("a", "b", "needs a human");
    body["hitl"] = json!({"required": true, "reason": "approval", "question": "Ship?"});
    let packet = app.create_packet(body).await;
    let id = packet["id"].as_str().unwrap_or_default().to_string();
    assert_eq!(packet["status"], "awaiting_human");
    let forged = app
        .patch(
            &format!("/packets/{id}"),
            json!({"hitl": {"required": true, "reason": "approval", "question": "Ship?",
                            "response": "approve", "responded_by": "ceo", "responded_at": "2026-11-28T00:00:00Z"}}),
        )
        .await;
    refused(&forged, "hitl.response through PATCH");
    assert!(forged.text.contains("/respond"), "{}", forged.text);
    let stored = app.get(&format!("/packets/{id}")).await;
    assert_eq!(stored.body["hitl"]["response"], Value::Null);
    assert_eq!(stored.body["status"], "awaiting_human");
}

async fn endpoint_templates_must_name_a_real_host(backend: Backend) {
    let app = spawn_app(backend).await;
    for template in ["https://{x", "https://{x}/orders", "https://a}b.example/x"] {
        let reply = app
            .post(
                "/trusted-endpoints",
                json!({"url": template, "methods": ["GET"]}),
            )
            .await;
        refused(&reply, template);
    }
}

async fn embedded_database_files_are_private(backend: Backend) {
    use std::os::unix::fs::PermissionsExt;
    let app = spawn_app(backend).await;
    app.create_packet(packet_body("a", "b", "written")).await;
    let Some(path) = app.database_url.strip_prefix("sqlite://") else {
        return; // PostgreSQL keeps no files of ours
    };
    let path = path.split('?').next().unwrap_or(path);
    for suffix in ["", "-wal", "-shm"] {
        let file = format!("{path}{suffix}");
        let mode = std::fs::metadata(&file)
            .expect("database file")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{file}");
    }
}
