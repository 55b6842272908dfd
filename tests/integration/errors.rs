//! Malformed input of every kind gets the status and JSON body of docs/api.md §4, never a 5xx, and leaves
//! nothing half-written.

use crate::on_both_backends;
use crate::support::{into_reply, packet_body, spawn_app, Backend};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

on_both_backends!(
    malformed_bodies_are_422_and_store_nothing,
    malformed_ids_and_queries_are_422,
    oversized_bodies_are_413_by_tier_even_when_chunked,
    missing_unknown_and_revoked_keys_are_refused,
    unknown_routes_and_methods_answer_json,
);

async fn malformed_bodies_are_422_and_store_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let target = app.create_packet(packet_body("a", "b", "target")).await;
    let pid = target["id"].as_str().unwrap_or_default().to_string();
    let valid = packet_body("a", "b", "x");
    // The valid body with the field at `pointer` set (created when absent).
    let with = |pointer: &str, value: Value| {
        let mut body = valid.clone();
        let (parent, field) = pointer.rsplit_once('/').unwrap_or_default();
        if let Some(Value::Object(object)) = body.pointer_mut(parent) {
            object.insert(field.to_string(), value);
        }
        body
    };
    let mut without_context = valid.clone();
    without_context
        .as_object_mut()
        .map(|object| object.remove("context"));
    // (method, path, raw body, expected `type` of the first issue, expected loc)
    let cases: Vec<(Method, String, String, &str, Value)> = vec![
        (Method::POST, "/packets".into(), "{\"metadata\": ".into(), "json_invalid", json!("body")),
        (Method::POST, "/packets".into(), "".into(), "json_invalid", json!("body")),
        (Method::POST, "/packets".into(), format!("{valid} trailing"), "json_invalid", json!("body")),
        (Method::POST, "/packets".into(), "[1, 2]".into(), "model_attributes_type", json!(["body"])),
        (Method::POST, "/packets".into(), without_context.to_string(), "missing", json!(["body", "context"])),
        (Method::POST, "/packets".into(), with("/context/summary", json!(5)).to_string(), "type_error", json!(["body", "context", "summary"])),
        (Method::POST, "/packets".into(), with("/metadata/priority", json!("urgent")).to_string(), "enum", json!(["body", "metadata", "priority"])),
        (Method::POST, "/packets".into(), with("/metadata/tags", json!("red")).to_string(), "type_error", json!(["body", "metadata", "tags"])),
        (Method::POST, "/packets".into(), with("/metadata/created_at", json!("yesterday")).to_string(), "value_error", json!(["body", "metadata", "created_at"])),
        (Method::POST, "/packets".into(), with("/context/custom", json!([1])).to_string(), "type_error", json!(["body", "context", "custom"])),
        (Method::POST, "/packets".into(), with("/parent_packet_id", json!("not-a-uuid")).to_string(), "value_error", json!(["body", "parent_packet_id"])),
        (Method::POST, "/packets".into(), json!({"metadata": valid["metadata"], "context": {"summary": "s", "artifacts": [{"key": "k", "value": 3}]}}).to_string(), "value_error", json!(["body", "context", "artifacts", 0, "value"])),
        (Method::POST, "/packets".into(), json!({"metadata": valid["metadata"], "context": valid["context"], "dependencies": [{"id": "d", "type": "telepathy", "description": ""}]}).to_string(), "enum", json!(["body", "dependencies", 0, "type"])),
        (Method::PATCH, format!("/packets/{pid}"), json!({"status": "bogus"}).to_string(), "enum", json!(["body", "status"])),
        (Method::PATCH, format!("/packets/{pid}"), json!({"context": {}}).to_string(), "missing", json!(["body", "context", "summary"])),
        (Method::POST, format!("/packets/{pid}/claim"), json!({"agent_id": "x"}).to_string(), "missing", json!(["body", "agent_name"])),
        (Method::POST, format!("/packets/{pid}/claim"), json!({"agent_id": 7, "agent_name": "x"}).to_string(), "type_error", json!(["body", "agent_id"])),
        (Method::POST, format!("/packets/{pid}/respond"), json!({"response": "x"}).to_string(), "missing", json!(["body", "responded_by"])),
        (Method::POST, format!("/packets/{pid}/chain"), json!({"context": {"summary": "s"}}).to_string(), "missing", json!(["body", "metadata"])),
        (Method::POST, "/keys".into(), json!({"name": "k", "role": "superuser"}).to_string(), "enum", json!(["body", "role"])),
        (Method::POST, "/keys".into(), json!({"name": "k", "tier": "platinum"}).to_string(), "enum", json!(["body", "tier"])),
        (Method::POST, "/keys".into(), json!({"role": "admin"}).to_string(), "missing", json!(["body", "name"])),
    ];
    for (method, path, raw, kind, loc) in cases {
        let response = app
            .http
            .request(method.clone(), app.api(&path))
            .header("X-API-Key", &app.admin_key)
            .header("content-type", "application/json")
            .body(raw.clone())
            .send()
            .await
            .expect("sent");
        let reply = into_reply(response).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{method} {path} {raw}: {}",
            reply.text
        );
        let issue = &reply.body["detail"][0];
        assert_eq!(issue["type"], kind, "{method} {path} {raw}: {}", reply.text);
        if loc.is_array() {
            assert_eq!(issue["loc"], loc, "{method} {path} {raw}");
        } else {
            assert_eq!(issue["loc"][0], loc, "{method} {path} {raw}");
        }
        assert!(issue["msg"].as_str().is_some_and(|msg| !msg.is_empty()));
    }
    let listed = app.get("/packets").await;
    assert_eq!(
        listed.body["total"], 1,
        "no bad create left a packet behind"
    );
    let history = app.get(&format!("/packets/{pid}/history")).await;
    assert_eq!(
        history.body["events"].as_array().map(Vec::len),
        Some(1),
        "no bad change left an event"
    );
    let unchanged = app.get(&format!("/packets/{pid}")).await;
    assert_eq!(unchanged.body, target, "the target packet is untouched");
    let keys = app.get("/keys").await;
    assert_eq!(
        keys.body.as_array().map(Vec::len),
        Some(1),
        "no bad key request created a key"
    );
}

async fn malformed_ids_and_queries_are_422(backend: Backend) {
    let app = spawn_app(backend).await;
    for (method, path) in [
        (Method::GET, "/packets/123"),
        (Method::PATCH, "/packets/xyz"),
        (Method::DELETE, "/packets/1234-5678"),
        (Method::POST, "/packets/zzz/claim"),
        (Method::POST, "/packets/zzz/respond"),
        (Method::GET, "/packets/zzz/history"),
        (Method::POST, "/packets/zzz/chain"),
        (Method::DELETE, "/keys/abc"),
        (Method::POST, "/keys/abc/rotate"),
    ] {
        let reply = app
            .send(method.clone(), path, Some(&app.admin_key), Some(json!({})))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{method} {path}"
        );
        assert_eq!(
            reply.body["detail"][0]["type"], "uuid_parsing",
            "{method} {path}"
        );
        assert_eq!(reply.body["detail"][0]["loc"][0], "path");
    }
    for query in [
        "limit=0",
        "limit=201",
        "limit=abc",
        "offset=-1",
        "offset=1.5",
        "created_after=soon",
        "created_before=2026-99-99",
    ] {
        let reply = app.get(&format!("/packets?{query}")).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{query}: {}",
            reply.text
        );
        assert_eq!(reply.body["detail"][0]["loc"][0], "query", "{query}");
    }
    let awaiting = app.get("/packets/awaiting?limit=500").await;
    assert_eq!(awaiting.status, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn oversized_bodies_are_413_by_tier_even_when_chunked(backend: Backend) {
    let app = spawn_app(backend).await;
    let free = {
        let reply = app
            .post(
                "/keys",
                json!({"name": "free", "role": "writer", "tier": "free"}),
            )
            .await;
        reply.body["key"].as_str().unwrap_or_default().to_string()
    };
    let padded = |bytes: usize| {
        let mut body = packet_body("a", "b", "big");
        body["context"]["custom"]["padding"] = json!("x".repeat(bytes));
        body.to_string()
    };
    let fits_business = padded(900 * 1024);
    let reply = app
        .send_raw(
            Method::POST,
            "/packets",
            &app.admin_key,
            fits_business.clone(),
            false,
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::CREATED,
        "business key may send 900 KiB"
    );

    let too_big_for_free = padded(70 * 1024);
    let reply = app
        .send_raw(
            Method::POST,
            "/packets",
            &free,
            too_big_for_free.clone(),
            false,
        )
        .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.body["tier"], "free");
    let expected = format!(
        "Request body too large: {} bytes (max 65,536 bytes for free tier)",
        group(too_big_for_free.len())
    );
    assert_eq!(reply.body["detail"], expected);

    let chunked = app
        .send_raw(Method::POST, "/packets", &free, too_big_for_free, true)
        .await;
    assert_eq!(
        chunked.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "chunked bodies are measured as they arrive"
    );
    assert_eq!(chunked.body["tier"], "free");
    let huge = app
        .send_raw(
            Method::POST,
            "/packets",
            &app.admin_key,
            padded(1100 * 1024),
            true,
        )
        .await;
    assert_eq!(huge.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(huge.body["tier"], "business");

    let small = app
        .send_raw(
            Method::POST,
            "/packets",
            &free,
            packet_body("a", "b", "small").to_string(),
            true,
        )
        .await;
    assert_eq!(
        small.status,
        StatusCode::CREATED,
        "a small chunked body is fine"
    );
    assert_eq!(app.get("/packets").await.body["total"], 2);
}

fn group(number: usize) -> String {
    let digits = number.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

async fn missing_unknown_and_revoked_keys_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let pid = app.create_packet(packet_body("a", "b", "x")).await["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let revoked = app.key("writer", None).await;
    let keys = app.get("/keys").await;
    let revoked_id = keys
        .body
        .as_array()
        .into_iter()
        .flatten()
        .find(|key| key["name"] == "writer key")
        .and_then(|key| key["id"].as_str())
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        app.delete(&format!("/keys/{revoked_id}")).await.status,
        StatusCode::NO_CONTENT
    );
    let unknown = handoffrail::auth::generate_key();
    for (key, status, detail) in [
        (None, StatusCode::UNAUTHORIZED, "Missing X-API-Key header"),
        (
            Some(unknown.as_str()),
            StatusCode::UNAUTHORIZED,
            "Invalid API key",
        ),
        (Some("garbage"), StatusCode::UNAUTHORIZED, "Invalid API key"),
        (
            Some(revoked.as_str()),
            StatusCode::FORBIDDEN,
            "API key has been revoked",
        ),
    ] {
        for (method, path, body) in [
            (Method::GET, "/packets".to_string(), None),
            (
                Method::POST,
                "/packets".to_string(),
                Some(packet_body("a", "b", "sneaky")),
            ),
            (Method::GET, format!("/packets/{pid}"), None),
            (
                Method::POST,
                format!("/packets/{pid}/claim"),
                Some(json!({"agent_id": "x", "agent_name": "X"})),
            ),
            (Method::GET, "/keys".to_string(), None),
        ] {
            let reply = app.send(method.clone(), &path, key, body).await;
            assert_eq!(
                (reply.status, reply.body.clone()),
                (status, json!({"detail": detail})),
                "{method} {path} with {key:?}"
            );
        }
    }
    let packet = app.get(&format!("/packets/{pid}")).await;
    assert_eq!(packet.body["status"], "created");
    assert_eq!(app.get("/packets").await.body["total"], 1);
}

async fn unknown_routes_and_methods_answer_json(backend: Backend) {
    let app = spawn_app(backend).await;
    let missing = into_reply(
        app.http
            .get(app.url("/api/v1/nothing-here"))
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(
        (missing.status, missing.body),
        (StatusCode::NOT_FOUND, json!({"detail": "Not Found"}))
    );
    let wrong = into_reply(
        app.http
            .put(app.url("/api/v1/packets"))
            .header("X-API-Key", &app.admin_key)
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(
        (wrong.status, wrong.body),
        (
            StatusCode::METHOD_NOT_ALLOWED,
            json!({"detail": "Method Not Allowed"})
        )
    );
}
