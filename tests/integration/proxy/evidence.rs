//! Proxied records are evidence: a claim checked against what the upstream really answered.

use super::*;
use crate::on_both_backends;
use crate::support::{spawn_app_with, AppOptions, Backend};
use crate::upstream::spawn_upstream;
use reqwest::StatusCode;
use serde_json::json;

on_both_backends!(proxied_records_are_evidence_for_claims,);

async fn proxied_records_are_evidence_for_claims(backend: Backend) {
    let app = spawn_app_with(backend, AppOptions::default()).await;
    let upstream = spawn_upstream().await;
    let client = through_proxy(&app, "sales-01", &app.admin_key);
    let response = client
        .get(upstream.url("/echo/orders/7"))
        .header("X-HandoffRail-Run", "run-e")
        .header("X-HandoffRail-Action", "get_order")
        .send()
        .await
        .expect("proxied");
    let id = record_id(&response);
    // Straight away, as an agent would: a fresh id is waited for while the recorder writes it.
    let claims = |method: &str| {
        json!({"run_id": "run-e", "claims": [
            {"action_name": "get_order", "record_id": id, "verification_mode": "exact",
             "json_path": "$.method", "claimed_value": method},
            {"action_name": "get_order", "verification_mode": "exact",
             "json_path": "$.target", "claimed_value": "/echo/orders/7"}]})
    };
    let passed = app.post("/evaluations", claims("GET")).await;
    assert_eq!(passed.status, StatusCode::CREATED, "{}", passed.text);
    assert_eq!(passed.body["outcome"], "PASS", "{}", passed.text);
    let caught = app.post("/evaluations", claims("DELETE")).await;
    assert_eq!(caught.body["outcome"], "CAUGHT", "{}", caught.text);
    assert_eq!(caught.body["per_claim"][0]["reason"], "value_mismatch");
    assert_eq!(
        caught.body["per_claim"][1]["result"], "PASS",
        "found by run + action"
    );
}
