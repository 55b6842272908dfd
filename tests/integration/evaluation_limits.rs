//! Hostile evaluation requests (the hardening issue's reproducers): each ends in a verdict with ERROR
//! `resource_limit` where a limit was reached, a bounded answer, and a server that keeps serving.

use crate::evaluations::{evaluate, record};
use crate::on_both_backends;
use crate::support::{spawn_app, spawn_app_with, AppOptions, Backend, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

on_both_backends!(
    deeply_parenthesized_path_is_a_resource_limit_not_a_crash,
    deeply_nested_functions_are_a_resource_limit_not_a_crash,
    nested_filters_parse_in_linear_time,
    regex_over_many_strings_compiles_once,
    descendant_explosion_ends_in_resource_limit_with_a_small_answer,
    actual_and_detail_are_capped_for_wide_results,
    evidence_beyond_the_request_limit_is_a_resource_limit,
    configured_step_budget_applies,
    small_evidence_that_needs_many_steps_gets_the_whole_budget,
);

fn claim(path: &str, record_id: &str) -> Value {
    json!({"action_name": "get_order", "verification_mode": "presence", "json_path": path,
           "claimed_value": true, "record_id": record_id})
}

/// Evaluates, then proves the server still answers: a crash or a blocked runtime fails here.
async fn evaluate_and_stay_up(app: &TestApp, claims: Vec<Value>) -> Value {
    let verdict = evaluate(app, json!({"claims": claims})).await;
    app.assert_healthy().await;
    verdict
}

fn reasons(verdict: &Value) -> Vec<&str> {
    verdict["per_claim"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|result| result["reason"].as_str().unwrap_or_default())
        .collect()
}

async fn deeply_parenthesized_path_is_a_resource_limit_not_a_crash(backend: Backend) {
    let app = spawn_app(backend).await;
    let sealed = record(&app, "default", "run-1", "get_order", br#"{"a": 1}"#).await;
    // 2.1 KB: overflowed a worker's stack and took the whole process down.
    let path = format!("$[?{}@.a{}]", "(".repeat(1000), ")".repeat(1000));
    let verdict =
        evaluate_and_stay_up(&app, vec![claim(&path, &sealed.record.id.to_string())]).await;
    assert_eq!(reasons(&verdict), ["resource_limit"]);
    assert_eq!(verdict["outcome"], "ERROR");
    let detail = verdict["per_claim"][0]["detail"]
        .as_str()
        .unwrap_or_default();
    assert!(detail.contains("nests deeper than 32 levels"), "{detail}");
    assert!(
        detail.len() < 300,
        "the detail quotes the path only in part: {detail}"
    );
}

async fn deeply_nested_functions_are_a_resource_limit_not_a_crash(backend: Backend) {
    let app = spawn_app(backend).await;
    let sealed = record(&app, "default", "run-1", "get_order", br#"{"a": 1}"#).await;
    let path = format!("$[?{}@.a{} == 1]", "length(".repeat(2000), ")".repeat(2000));
    let verdict =
        evaluate_and_stay_up(&app, vec![claim(&path, &sealed.record.id.to_string())]).await;
    assert_eq!(reasons(&verdict), ["resource_limit"]);
}

async fn nested_filters_parse_in_linear_time(backend: Backend) {
    let app = spawn_app(backend).await;
    let sealed = record(&app, "default", "run-1", "get_order", br#"[[[1]]]"#).await;
    let id = sealed.record.id.to_string();
    // Depth 21 took 10.5 s to parse (x2.3 per level) and depth 300 never finished; the whole request now
    // parses 31 levels (within the limit) and 300 (refused) as a matter of course.
    let within = format!("$[?{}@{}]", "@[?".repeat(30), "]".repeat(30));
    let beyond = format!("$[?{}@{}]", "@[?".repeat(300), "]".repeat(300));
    let verdict = evaluate_and_stay_up(&app, vec![claim(&within, &id), claim(&beyond, &id)]).await;
    assert_eq!(reasons(&verdict), ["presence_mismatch", "resource_limit"]);
}

async fn regex_over_many_strings_compiles_once(backend: Backend) {
    let app = spawn_app(backend).await;
    // ~520 KB with 15,000 strings: one compile per node took 40 s for one claim.
    let words: Vec<Value> = (0..15_000)
        .map(|i| json!({"word": format!("w{i:05}-{}", "x".repeat(20))}))
        .collect();
    let body = serde_json::to_vec(&json!({"words": words})).expect("json");
    assert!(body.len() > 500_000);
    let sealed = record(&app, "default", "run-1", "get_order", &body).await;
    let id = sealed.record.id.to_string();
    let claims = vec![
        claim("$[?count(@..[?match(@, 'w[0-9]{5}-x+')]) == 15000]", &id),
        claim("$[?count(@..[?search(@, '0{3}')]) == 123]", &id),
    ];
    let verdict = evaluate_and_stay_up(&app, claims).await;
    assert_eq!(reasons(&verdict), ["match", "match"], "{verdict}");
}

async fn descendant_explosion_ends_in_resource_limit_with_a_small_answer(backend: Backend) {
    let app = spawn_app(backend).await;
    // 1 KB of nesting: `$..*..*..*` took 5.8 s, 1.4 GB and answered 57 MB.
    let mut document = json!(1);
    for _ in 0..60 {
        document = json!([document, {"a": [1]}]);
    }
    let body = serde_json::to_vec(&document).expect("json");
    assert!(body.len() < 2_000);
    let sealed = record(&app, "default", "run-1", "get_order", &body).await;
    let id = sealed.record.id.to_string();
    let exploding = json!({"action_name": "get_order", "verification_mode": "exact",
                           "json_path": "$..*..*..*..*..*", "claimed_value": [], "record_id": id});
    let reply = app
        .post(
            "/evaluations",
            json!({"claims": [exploding.clone(), exploding.clone(), exploding]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert!(
        reply.text.len() < 20_000,
        "answer of {} bytes",
        reply.text.len()
    );
    assert_eq!(
        reasons(&reply.body),
        ["resource_limit", "resource_limit", "resource_limit"]
    );
    let detail = reply.body["per_claim"][0]["detail"]
        .as_str()
        .unwrap_or_default();
    assert!(detail.contains("budget"), "{detail}");
}

async fn actual_and_detail_are_capped_for_wide_results(backend: Backend) {
    let app = spawn_app(backend).await;
    let items: Vec<Value> = (0..5_000)
        .map(|i| json!({"id": i, "name": format!("item {i}")}))
        .collect();
    let body = serde_json::to_vec(&json!({"items": items})).expect("json");
    let sealed = record(&app, "default", "run-1", "get_order", &body).await;
    let id = sealed.record.id.to_string();
    // 50 claims of `$..*` answered 60.7 MB: `detail` quoted every node.
    let claims: Vec<Value> = (0..50)
        .map(|_| {
            json!({"action_name": "get_order", "verification_mode": "field_extraction",
                        "json_path": "$..*", "claimed_value": "x".repeat(10_000), "record_id": id})
        })
        .collect();
    let reply = app.post("/evaluations", json!({"claims": claims})).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert!(
        reply.text.len() < 1_000_000,
        "answer of {} bytes",
        reply.text.len()
    );
    let first = &reply.body["per_claim"][0];
    assert_eq!(first["reason"], "value_mismatch");
    assert_eq!(first["actual_truncated"], true);
    assert!(first["actual"]
        .as_str()
        .is_some_and(|text| text.len() <= 4096));
    assert!(first["detail"]
        .as_str()
        .is_some_and(|text| text.len() <= 4096));
}

async fn evidence_beyond_the_request_limit_is_a_resource_limit(backend: Backend) {
    let app = spawn_app_with(
        backend,
        AppOptions {
            configure: Box::new(|config| config.evaluation.eval_max_evidence = 1_000),
            ..AppOptions::default()
        },
    )
    .await;
    let small = record(&app, "default", "run-1", "get_order", br#"{"a": 1}"#).await;
    let large = record(&app, "default", "run-1", "get_order", &vec![b' '; 2_000]).await;
    let verdict = evaluate_and_stay_up(
        &app,
        vec![
            claim("$.a", &large.record.id.to_string()),
            claim("$.a", &small.record.id.to_string()),
        ],
    )
    .await;
    assert_eq!(reasons(&verdict), ["resource_limit", "match"]);
}

async fn configured_step_budget_applies(backend: Backend) {
    let app = spawn_app_with(
        backend,
        AppOptions {
            configure: Box::new(|config| config.evaluation.eval_max_steps = 100),
            ..AppOptions::default()
        },
    )
    .await;
    let items: Vec<Value> = (0..200).map(|i| json!({"id": i})).collect();
    let body = serde_json::to_vec(&json!({"items": items})).expect("json");
    let sealed = record(&app, "default", "run-1", "get_order", &body).await;
    let id = sealed.record.id.to_string();
    let verdict = evaluate_and_stay_up(
        &app,
        vec![
            claim("$.items", &id),
            claim("$..id", &id),
            claim("$.items", &id),
        ],
    )
    .await;
    // The first claim fits; the second spends the budget; the third is not started.
    assert_eq!(
        reasons(&verdict),
        ["match", "resource_limit", "resource_limit"]
    );
}

async fn small_evidence_that_needs_many_steps_gets_the_whole_budget(backend: Backend) {
    let app = spawn_app(backend).await;
    // 50 KB and two claims are evaluated on the request's task within a small step allowance first; these
    // 25,000 nodes need more (one step per node visited and compared), so the verdict must come from the
    // whole budget, not end in `resource_limit`.
    let body = serde_json::to_vec(&vec![1; 25_000]).expect("json");
    assert!(body.len() < 64 << 10);
    let sealed = record(&app, "default", "run-1", "get_order", &body).await;
    let id = sealed.record.id.to_string();
    let verdict = evaluate_and_stay_up(
        &app,
        vec![claim("$[?@ == 1]", &id), claim("$[?@ == 2]", &id)],
    )
    .await;
    assert_eq!(
        reasons(&verdict),
        ["match", "presence_mismatch"],
        "{verdict}"
    );
}
