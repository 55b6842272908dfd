//! The OpenAPI document states what the server enforces, and the server enforces what it states (the reproducers
//! schemathesis found, scripts/api-conformance.sh): integral numbers are integers, timestamps stay within what
//! RFC 3339 writes, a checkpoint's answer comes only from `respond`, HAR fields are typed, typed query values
//! are not left empty, templates hold no spaces or control characters, and the formats' patterns are exact.

use crate::on_both_backends;
use crate::support::{packet_body, spawn_app, Backend, TestApp};
use base64::Engine;
use reqwest::StatusCode;
use serde_json::{json, Value};

on_both_backends!(
    integral_numbers_are_integers,
    unix_second_timestamps_stay_within_rfc_3339_years,
    a_checkpoint_is_answered_only_by_respond,
    har_fields_are_typed,
    imported_records_may_carry_numbers_of_any_size_they_ignore,
    typed_query_values_are_not_left_empty,
    templates_hold_no_spaces_or_control_characters,
    lax_integers_read_back_as_stored,
    the_formats_patterns_are_what_the_server_reads,
);

fn status_of(reply: &crate::support::Reply, expected: StatusCode, what: &str) {
    assert_eq!(reply.status, expected, "{what}: {}", reply.text);
}

async fn integral_numbers_are_integers(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app
        .post(
            "/tenants",
            json!({"name": "integral", "handoffs_per_day": 380.0, "max_api_keys": 7}),
        )
        .await;
    status_of(&tenant, StatusCode::CREATED, "380.0 is an integer");
    assert_eq!(tenant.body["handoffs_per_day"], 380);
    let id = tenant.body["id"].as_str().unwrap_or_default().to_string();
    let fraction = app
        .patch(&format!("/tenants/{id}"), json!({"max_api_keys": 2.5}))
        .await;
    status_of(&fraction, StatusCode::UNPROCESSABLE_ENTITY, "2.5");

    let schema = app
        .post(
            "/schemas",
            json!({"name": "versioned", "version": 2.0, "json_schema": {"type": "object"}}),
        )
        .await;
    status_of(&schema, StatusCode::CREATED, "version 2.0");
    assert_eq!(schema.body["version"], 2);
}

async fn unix_second_timestamps_stay_within_rfc_3339_years(backend: Backend) {
    let app = spawn_app(backend).await;
    for (seconds, expected) in [
        (json!(1_764_288_000.5), StatusCode::CREATED),
        (json!(-62_167_219_200_i64), StatusCode::CREATED), // 0000-01-01T00:00:00Z
        (json!(253_402_300_800_i64), StatusCode::UNPROCESSABLE_ENTITY), // year 10000
        (json!(-62_167_219_201_i64), StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let mut body = packet_body("a", "b", "timed");
        body["metadata"]["created_at"] = seconds.clone();
        let reply = app.post("/packets", body).await;
        status_of(&reply, expected, &seconds.to_string());
    }
}

async fn answered_checkpoint(app: &TestApp) -> String {
    let mut body = packet_body("a", "b", "needs a human");
    body["hitl"] = json!({"required": true, "reason": "approval", "question": "Ship?"});
    let id = app.create_packet(body).await["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let answered = app
        .post(
            &format!("/packets/{id}/respond"),
            json!({"response": "approve", "responded_by": "ann"}),
        )
        .await;
    status_of(&answered, StatusCode::OK, "respond");
    id
}

async fn a_checkpoint_is_answered_only_by_respond(backend: Backend) {
    let app = spawn_app(backend).await;
    // A create cannot hand over a checkpoint some "human" already answered.
    let mut forged = packet_body("a", "b", "pre-approved");
    forged["hitl"] = json!({"required": true, "reason": "approval", "response": "approve", "responded_by": "ceo"});
    let reply = app.post("/packets", forged).await;
    status_of(&reply, StatusCode::UNPROCESSABLE_ENTITY, "answer on create");
    assert!(reply.text.contains("/respond"), "{}", reply.text);

    // A PATCH that leaves the answer out keeps it; one that needs a human states why.
    let id = answered_checkpoint(&app).await;
    let reworded = app
        .patch(
            &format!("/packets/{id}"),
            json!({"hitl": {"required": true, "reason": "approval", "question": "Ship it today?"}}),
        )
        .await;
    status_of(&reworded, StatusCode::OK, "new question, answer left out");
    assert_eq!(reworded.body["hitl"]["question"], "Ship it today?");
    assert_eq!(reworded.body["hitl"]["response"], "approve");
    assert_eq!(reworded.body["hitl"]["responded_by"], "ann");
    let changed = app
        .patch(
            &format!("/packets/{id}"),
            json!({"hitl": {"required": true, "reason": "approval", "response": "reject"}}),
        )
        .await;
    status_of(
        &changed,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a changed answer",
    );
    let reasonless = app
        .patch(
            &format!("/packets/{id}"),
            json!({"hitl": {"required": true, "reason": ""}}),
        )
        .await;
    status_of(
        &reasonless,
        StatusCode::UNPROCESSABLE_ENTITY,
        "required, no reason",
    );
    let optional = app
        .patch(
            &format!("/packets/{id}"),
            json!({"hitl": {"required": "no", "reason": ""}}),
        )
        .await;
    status_of(&optional, StatusCode::OK, "not required, no reason");
}

fn har_entry(request: Value, response: Value) -> Value {
    json!({"log": {"entries": [{
        "startedDateTime": "2026-11-21T10:00:00Z",
        "request": request,
        "response": response,
    }]}})
}

async fn har_fields_are_typed(backend: Backend) {
    let app = spawn_app(backend).await;
    let get = json!({"method": "GET", "url": "https://api.example.com/orders"});
    for (response, what) in [
        (json!({"status": "200"}), "status as text"),
        (json!({"status": 200.5}), "status with a fraction"),
        (json!({"headers": {"name": "a"}}), "headers not a list"),
        (
            json!({"headers": [{"name": 5, "value": "x"}]}),
            "header name not text",
        ),
        (
            json!({"content": {"text": "e30=", "encoding": 5}}),
            "encoding not text",
        ),
        (json!({"content": {"text": 5}}), "body text not text"),
        (json!({"content": "{}"}), "content not an object"),
    ] {
        let reply = app.post("/records", har_entry(get.clone(), response)).await;
        status_of(&reply, StatusCode::UNPROCESSABLE_ENTITY, what);
    }
    // An exchange's length must leave its end representable (1e300 overflowed the end's arithmetic).
    for time in [
        json!(1e300),
        json!(-1e300),
        json!("NaN"),
        json!(-0.5),
        json!(1.1e12),
    ] {
        let mut entry = har_entry(get.clone(), json!({"status": 200}));
        entry["log"]["entries"][0]["time"] = time.clone();
        let reply = app.post("/records", entry).await;
        status_of(
            &reply,
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("time {time}"),
        );
        assert!(reply.text.contains("time"), "{}", reply.text);
    }
    let mut unknown = har_entry(get.clone(), json!({"status": 200}));
    unknown["log"]["entries"][0]["time"] = json!(-1);
    status_of(
        &app.post("/records", unknown).await,
        StatusCode::CREATED,
        "time -1",
    );
    let mut tagged = har_entry(get.clone(), json!({"status": 200}));
    tagged["log"]["entries"][0]["_handoffrail"] = json!({"run_id": 7});
    let reply = app.post("/records", tagged).await;
    status_of(&reply, StatusCode::UNPROCESSABLE_ENTITY, "run_id not text");

    // HAR's "unknown" values read as no value; an integral number written with a fraction is that integer.
    for (status, stored) in [(json!(0), Value::Null), (json!(201.0), json!(201))] {
        let response =
            json!({"status": status, "content": {"text": "{}", "mimeType": "application/json"}});
        let reply = app.post("/records", har_entry(get.clone(), response)).await;
        status_of(&reply, StatusCode::CREATED, &format!("status {status}"));
        let id = reply.body["ids"][0]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let record = app.get(&format!("/records/{id}")).await;
        assert_eq!(record.body["status"], stored, "status {status}");
    }
}

async fn imported_records_may_carry_numbers_of_any_size_they_ignore(backend: Backend) {
    let app = spawn_app(backend).await;
    let reply = app
        .post(
            "/records",
            har_entry(
                json!({"method": "GET", "url": "https://api.example.com/a"}),
                json!({"status": 200}),
            ),
        )
        .await;
    let id = reply.body["ids"][0]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut exported = app.get(&format!("/records/{id}")).await.body;
    // Serde's flattening could not carry this (`u128`), so the import of such a record was refused.
    exported["note"] = serde_json::from_str("221207309828061921280").expect("number");
    let reimport = app
        .post("/records", json!({"records": [exported.clone()]}))
        .await;
    status_of(&reimport, StatusCode::CREATED, "native record");
    let mut entry = har_entry(
        json!({"method": "GET", "url": "https://api.example.com/a"}),
        json!({"status": 200}),
    );
    entry["log"]["entries"][0]["_handoffrail"] = json!({"record": exported});
    let carried = app.post("/records", entry).await;
    status_of(
        &carried,
        StatusCode::CREATED,
        "sealed record in a HAR entry",
    );
}

async fn typed_query_values_are_not_left_empty(backend: Backend) {
    let app = spawn_app(backend).await;
    for path in [
        "/packets?created_before=",
        "/packets?created_after=",
        "/audit?created_after=",
        "/audit?packet_id=",
        "/evaluations?outcome=maybe",
    ] {
        status_of(&app.get(path).await, StatusCode::UNPROCESSABLE_ENTITY, path);
    }
    status_of(
        &app.get("/evaluations?outcome=%20caught%20").await,
        StatusCode::OK,
        "outcome in any case",
    );
}

async fn templates_hold_no_spaces_or_control_characters(backend: Backend) {
    let app = spawn_app(backend).await;
    for template in [
        "https://api.example.com/a b",
        "https://api.example.com/a\u{85}b",
        "https://api.example.com/{id\u{1c}}",
    ] {
        let reply = app
            .post("/trusted-endpoints", json!({"url": template}))
            .await;
        status_of(&reply, StatusCode::UNPROCESSABLE_ENTITY, template);
    }
    let reply = app
        .post(
            "/trusted-endpoints",
            json!({"url": "https://*.example.com/orders/{id}/{rest:path}"}),
        )
        .await;
    status_of(&reply, StatusCode::CREATED, "a full template");
}

async fn lax_integers_read_back_as_stored(backend: Backend) {
    let app = spawn_app(backend).await;
    // Text beyond what a double holds exactly was stored, then refused when read back (500 on every read).
    let mut body = packet_body("a", "b", "long timeout");
    body["hitl"] =
        json!({"required": true, "reason": "approval", "timeout_seconds": " 9007199254740993 "});
    let packet = app.create_packet(body).await;
    let id = packet["id"].as_str().unwrap_or_default();
    let read = app.get(&format!("/packets/{id}")).await;
    status_of(&read, StatusCode::OK, "read back");
    assert_eq!(
        read.body["hitl"]["timeout_seconds"],
        json!(9_007_199_254_740_993_i64)
    );
    status_of(
        &app.get(&format!("/packets/{id}/history")).await,
        StatusCode::OK,
        "history",
    );
}

fn pattern_of(document: &Value, pointer: &str) -> regex::Regex {
    let pattern = document
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no pattern at {pointer}"));
    regex::Regex::new(pattern).expect("the pattern compiles")
}

async fn the_formats_patterns_are_what_the_server_reads(backend: Backend) {
    let app = spawn_app(backend).await;
    let document = app.openapi_document().await;
    let uuid = pattern_of(
        &document,
        "/components/schemas/Record/properties/id/pattern",
    );
    let id = uuid::Uuid::new_v4();
    for text in [
        id.hyphenated().to_string(),
        id.simple().to_string(),
        id.braced().to_string(),
        id.urn().to_string(),
        id.hyphenated().to_string().to_uppercase(),
        format!("{}x", id.simple()),
        id.hyphenated().to_string().replacen('-', "", 1),
        format!("{{{}", id.hyphenated()),
        String::new(),
    ] {
        assert_eq!(
            uuid.is_match(&text),
            uuid::Uuid::parse_str(&text).is_ok(),
            "{text}"
        );
    }
    let base64 = pattern_of(
        &document,
        "/components/schemas/Record/properties/request_body/pattern",
    );
    for text in [
        "", "QQ==", "QUI=", "QUJD", "QR==", "QUJ=", "QQ", "QQ=", "Q===", "QUJD\n",
    ] {
        assert_eq!(
            base64.is_match(text),
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .is_ok(),
            "{text:?}"
        );
    }
    // int64 bounds are written exactly (as a double, i64::MAX rounds up past what is read).
    let size = &document["components"]["schemas"]["Record"]["properties"]["request_body_size"];
    assert_eq!(size["maximum"], json!(i64::MAX), "{size}");
    assert_eq!(
        document["components"]["schemas"]["ImportDocument"]["oneOf"][0]["title"],
        "HAR"
    );
}
