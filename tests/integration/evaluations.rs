//! Evaluations over HTTP: evidence resolution, the gates, storage and reading back (evaluator.md).

use crate::on_both_backends;
use crate::store::{evidence, flip_stored_body_byte};
use crate::support::{spawn_app, Backend, TestApp};
use handoffrail::records::SealedRecord;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

on_both_backends!(
    claims_are_checked_against_the_records_they_name,
    evidence_found_by_run_and_action_tag,
    gates_catch_missing_tampered_untrusted_and_non_json_evidence,
    another_tenants_record_is_missing_evidence,
    a_record_written_just_after_the_claim_is_still_found,
    evaluations_are_stored_without_secrets_and_listed,
    evaluations_are_listed_by_agent,
    sourcerykit_range_claims_report_each_entry,
    malformed_payloads_are_422,
);

const ORDER: &[u8] = br#"{"order": {"id": 7, "status": "shipped", "total": 89.5, "items": [{"sku": "A", "qty": 2}, {"sku": "B", "qty": 1}]}}"#;

pub(crate) async fn record(
    app: &TestApp,
    tenant: &str,
    run: &str,
    action: &str,
    body: &[u8],
) -> SealedRecord {
    let (key, store) = app.recorder().await;
    let now = handoffrail::timestamp::Timestamp::now().micros();
    let sealed = key.seal(evidence(tenant, run, action, "sales-01", now, body));
    store
        .insert_records(std::slice::from_ref(&sealed))
        .await
        .expect("insert");
    sealed
}

pub(crate) async fn evaluate(app: &TestApp, payload: Value) -> Value {
    let reply = app.post("/evaluations", payload).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    reply.body
}

fn reasons(result: &Value) -> Vec<String> {
    result["per_claim"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["reason"].as_str().map(String::from))
        .collect()
}

async fn claims_are_checked_against_the_records_they_name(backend: Backend) {
    let app = spawn_app(backend).await;
    let sealed = record(&app, "default", "run-1", "get_order", ORDER).await;
    let id = sealed.record.id.to_string();
    let result = evaluate(&app, json!({"run_id": "run-1", "agent_id": "sales-01", "claims": [
        {"action_name": "get_order", "verification_mode": "exact", "json_path": "$.order.status", "claimed_value": "shipped", "record_id": id},
        {"action_name": "get_order", "verification_mode": "field_extraction", "json_path": "$.order.total", "claimed_value": "99.00", "ref": id}
    ]})).await;
    assert_eq!(result["outcome"], "CAUGHT");
    assert_eq!(
        result["counts"],
        json!({"pass": 1, "caught": 1, "error": 0})
    );
    assert_eq!(reasons(&result), ["match", "value_mismatch"]);
    assert_eq!(
        result["per_claim"][1]["detail"],
        "claimed 99.00, record has 89.5 at $.order.total"
    );
    assert_eq!(result["per_claim"][1]["actual"], json!(89.5));
    assert_eq!(result["run_id"], "run-1");
    assert!(result["duration_ms"].as_f64().is_some());
    let passing = evaluate(&app, json!({"claims": [
        {"action_name": "get_order", "verification_mode": "presence", "json_path": "$.order.items[?@.sku=='B']", "record_id": id}
    ]})).await;
    assert_eq!(passing["outcome"], "PASS");
}

async fn evidence_found_by_run_and_action_tag(backend: Backend) {
    let app = spawn_app(backend).await;
    record(
        &app,
        "default",
        "run-7",
        "get_order",
        br#"{"order": {"status": "pending"}}"#,
    )
    .await;
    record(
        &app,
        "default",
        "run-7",
        "get_order",
        br#"{"order": {"status": "shipped"}}"#,
    )
    .await;
    record(
        &app,
        "default",
        "run-8",
        "get_order",
        br#"{"order": {"status": "lost"}}"#,
    )
    .await;
    let claim = |status: &str| json!({"action_name": "get_order", "verification_mode": "exact", "json_path": "$.order.status", "claimed_value": status});
    let latest = evaluate(
        &app,
        json!({"run_id": "run-7", "claims": [claim("shipped")]}),
    )
    .await;
    assert_eq!(
        latest["outcome"], "PASS",
        "the most recent record of the run: {latest}"
    );
    let older = evaluate(
        &app,
        json!({"run_id": "run-7", "claims": [claim("pending")]}),
    )
    .await;
    assert_eq!(reasons(&older), ["value_mismatch"]);
    let absent = evaluate(
        &app,
        json!({"run_id": "run-9", "claims": [claim("shipped")]}),
    )
    .await;
    assert_eq!(reasons(&absent), ["evidence_missing"]);
    let no_reference = evaluate(&app, json!({"claims": [claim("shipped")]})).await;
    assert_eq!(
        (no_reference["outcome"].clone(), reasons(&no_reference)),
        (json!("ERROR"), vec!["invalid_claim".to_string()])
    );
}

async fn gates_catch_missing_tampered_untrusted_and_non_json_evidence(backend: Backend) {
    let app = spawn_app(backend).await;
    let good = record(&app, "default", "run", "get_order", ORDER).await;
    let tampered = record(&app, "default", "run", "get_order", ORDER).await;
    flip_stored_body_byte(backend, &app.database_url, tampered.record.id).await;
    let html = record(&app, "default", "run", "get_page", b"<html>not json</html>").await;
    let claim = |id: String| json!({"action_name": "get_order", "verification_mode": "exact", "json_path": "$.order.id", "claimed_value": 7, "record_id": id});
    let result = evaluate(&app, json!({"claims": [
        claim(good.record.id.to_string()),
        claim(uuid::Uuid::new_v4().to_string()),
        claim("not-even-a-uuid".into()),
        claim(tampered.record.id.to_string()),
        claim(html.record.id.to_string()),
        {"action_name": "get_page", "verification_mode": "presence", "record_id": html.record.id.to_string()}
    ]})).await;
    assert_eq!(
        reasons(&result),
        [
            "match",
            "evidence_missing",
            "evidence_missing",
            "evidence_tampered",
            "evidence_not_json",
            "match"
        ]
    );
    assert_eq!(result["outcome"], "CAUGHT");

    // Once the tenant trusts endpoints, evidence from anywhere else is refused.
    let trusted = app
        .post(
            "/trusted-endpoints",
            json!({"url": "https://api.example.com/v1/orders/{id}", "methods": ["GET"]}),
        )
        .await;
    assert_eq!(trusted.status, StatusCode::CREATED);
    let inside = evaluate(&app, json!({"claims": [claim(good.record.id.to_string())]})).await;
    assert_eq!(
        reasons(&inside),
        ["match"],
        "the fixture's URL is https://api.example.com/v1/orders/7"
    );
    let (key, store) = app.recorder().await;
    let mut elsewhere = evidence(
        "default",
        "run",
        "get_order",
        "sales-01",
        handoffrail::timestamp::Timestamp::now().micros(),
        ORDER,
    );
    elsewhere.url = "https://api.example.com.evil.net/v1/orders/7".into();
    let elsewhere = key.seal(elsewhere);
    store
        .insert_records(std::slice::from_ref(&elsewhere))
        .await
        .expect("insert");
    let outside = evaluate(
        &app,
        json!({"claims": [claim(elsewhere.record.id.to_string())]}),
    )
    .await;
    assert_eq!(reasons(&outside), ["untrusted_endpoint"]);
}

async fn another_tenants_record_is_missing_evidence(backend: Backend) {
    let app = spawn_app(backend).await;
    let theirs = record(&app, "acme", "run", "get_order", ORDER).await;
    let result = evaluate(&app, json!({"claims": [
        {"action_name": "get_order", "verification_mode": "exact", "json_path": "$.order.id", "claimed_value": 7, "record_id": theirs.record.id.to_string()}
    ]})).await;
    assert_eq!(reasons(&result), ["evidence_missing"]);
    assert_eq!(result["outcome"], "CAUGHT");
}

async fn a_record_written_just_after_the_claim_is_still_found(backend: Backend) {
    let app = spawn_app(backend).await;
    let (key, store) = app.recorder().await;
    // The proxy mints the id when the request arrives and commits the record a little later.
    let pending = key.seal(evidence(
        "default",
        "run",
        "get_order",
        "a",
        handoffrail::timestamp::Timestamp::now().micros(),
        ORDER,
    ));
    let id = pending.record.id.to_string();
    let writer = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        store
            .insert_records(std::slice::from_ref(&pending))
            .await
            .expect("late insert");
    });
    let result = evaluate(&app, json!({"claims": [
        {"action_name": "get_order", "verification_mode": "exact", "json_path": "$.order.status", "claimed_value": "shipped", "record_id": id}
    ]})).await;
    writer.await.expect("writer");
    assert_eq!(result["outcome"], "PASS", "{result}");
}

/// SourceryKit's list-form `range_threshold` (which SourceryKit itself always answers CAUGHT): PASS when each
/// entry's value is the record's and within the bounds, CAUGHT otherwise, with each entry's verdict.
async fn sourcerykit_range_claims_report_each_entry(backend: Backend) {
    let app = spawn_app(backend).await;
    let sealed = record(&app, "default", "run-r", "get_order", ORDER).await;
    let id = sealed.record.id.to_string();
    let claim = |total: f64, qty: u32| {
        json!({"claims": [{"action_name": "get_order", "verification_mode": "range_threshold",
            "range_min": 1, "range_max": 100, "claimed_value": [
                {"path": "$.order.total", "value": total, "sourcerykit_ref": id},
                {"path": "$.order.items[0].qty", "value": qty, "sourcerykit_ref": id}]}]})
    };
    let passed = evaluate(&app, claim(89.5, 2)).await;
    assert_eq!(passed["outcome"], "PASS", "{passed}");
    assert_eq!(passed["per_claim"][0]["actual"], json!([89.5, 2]));
    let caught = evaluate(&app, claim(89.5, 3)).await;
    assert_eq!(caught["outcome"], "CAUGHT", "{caught}");
    let verdict = &caught["per_claim"][0];
    assert_eq!(
        (
            &verdict["json_path"],
            &verdict["record_id"],
            &verdict["reason"]
        ),
        (
            &json!("$.order.items[0].qty"),
            &json!(id),
            &json!("value_mismatch")
        )
    );
    let entries: Vec<_> = verdict["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|entry| {
            (
                entry["json_path"].clone(),
                entry["record_id"].clone(),
                entry["result"].clone(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            (json!("$.order.total"), json!(id), json!("PASS")),
            (json!("$.order.items[0].qty"), json!(id), json!("CAUGHT"))
        ]
    );
}

async fn evaluations_are_stored_without_secrets_and_listed(backend: Backend) {
    let app = spawn_app(backend).await;
    let sealed = record(&app, "default", "run-s", "get_order", ORDER).await;
    let payload = json!({
        "run_id": "run-s", "provably_org_id": "org-1", "integration_api_key": "sk_live_SECRET123",
        "query_ids": ["q1"], "trace_intercept_id": "t-1", "reasoning": "the order shipped",
        "claims": [{"action_name": "get_order", "verification_mode": "field_extraction", "json_path": "$",
                    "claimed_value": [{"path": "$.order.status", "value": "shipped", "sourcerykit_ref": sealed.record.id.to_string()}]}]
    });
    let first = evaluate(&app, payload).await;
    assert_eq!(first["outcome"], "PASS", "SourceryKit's list form: {first}");
    let second = evaluate(&app, json!({"run_id": "run-s", "claims": []})).await;
    assert_eq!(
        (second["outcome"].clone(), second["errors"].clone()),
        (json!("ERROR"), json!(["no_claims"]))
    );

    let id = first["id"].as_str().unwrap_or_default();
    let fetched = app.get(&format!("/evaluations/{id}")).await;
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(fetched.body, first, "stored exactly as returned");
    let other = app.key("admin", Some("acme")).await;
    assert_eq!(
        app.send(
            Method::GET,
            &format!("/evaluations/{id}"),
            Some(&other),
            None
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );

    let listed = app.get("/evaluations?run_id=run-s").await;
    let ids: Vec<&str> = listed.body["evaluations"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["id"].as_str())
        .collect();
    assert_eq!(
        ids,
        [second["id"].as_str().unwrap_or_default(), id],
        "newest first"
    );
    let passed = app.get("/evaluations?outcome=pass").await;
    assert_eq!(passed.body["evaluations"].as_array().map(Vec::len), Some(1));
    let page = app.get("/evaluations?limit=1").await;
    let cursor = page.body["next_cursor"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let rest = app
        .get(&format!("/evaluations?limit=1&cursor={cursor}"))
        .await;
    assert_eq!(rest.body["evaluations"][0]["id"], id);
    assert_eq!(
        app.get("/evaluations?outcome=maybe").await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    // Nothing secret reached the database.
    use sqlx::Connection;
    let stored: Vec<String> = match backend {
        Backend::Sqlite => {
            let mut connection = sqlx::SqliteConnection::connect(&app.database_url)
                .await
                .expect("connect");
            sqlx::query_scalar("SELECT payload || result FROM evaluations")
                .fetch_all(&mut connection)
                .await
                .expect("rows")
        }
        Backend::Postgres => {
            let mut connection = sqlx::PgConnection::connect(&app.database_url)
                .await
                .expect("connect");
            sqlx::query_scalar("SELECT payload || result FROM evaluations")
                .fetch_all(&mut connection)
                .await
                .expect("rows")
        }
    };
    assert_eq!(stored.len(), 2);
    assert!(
        stored
            .iter()
            .all(|row| !row.contains("SECRET123") && !row.contains("integration_api_key")),
        "{stored:?}"
    );
}

async fn malformed_payloads_are_422(backend: Backend) {
    let app = spawn_app(backend).await;
    let too_many: Vec<Value> = (0..1001).map(|_| json!({})).collect();
    for payload in [
        json!({}),
        json!({"claims": "all"}),
        json!({"claims": too_many}),
        json!({"claims": [], "run_id": "x".repeat(300)}),
    ] {
        let reply = app.post("/evaluations", payload).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            reply.text
        );
    }
    let reader = app.key("reader", None).await;
    let refused = app
        .send(
            Method::POST,
            "/evaluations",
            Some(&reader),
            Some(json!({"claims": []})),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::FORBIDDEN,
        "posting needs the agent role"
    );
    assert_eq!(
        app.get("/evaluations").await.body["evaluations"],
        json!([]),
        "nothing was stored"
    );
}

async fn evaluations_are_listed_by_agent(backend: Backend) {
    let app = spawn_app(backend).await;
    evaluate(&app, json!({"agent_id": "sales-01", "claims": []})).await;
    let by_agent = evaluate(&app, json!({"agent_id": "sales-02", "claims": []})).await;
    let agents = app.get("/evaluations?agent_id=sales-02").await;
    assert_eq!(
        agents.body["evaluations"]
            .as_array()
            .map(|found| found.iter().map(|e| e["id"].clone()).collect::<Vec<_>>()),
        Some(vec![by_agent["id"].clone()]),
        "filtered by agent: {}",
        agents.text
    );
}
