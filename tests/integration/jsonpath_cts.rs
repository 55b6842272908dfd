//! The RFC 9535 JSONPath compliance suite (vendored in `tests/data/jsonpath-cts`, BSD-2), run through the
//! evaluator: an invalid selector is an `invalid_path` error; a valid one finds exactly the expected nodes.

use handoffrail::verify::{evaluate, Evidence, Outcome, Payload, Reason};
use serde_json::{json, Value};

/// The value an `exact` claim must name to match a nodelist: one node itself, several as an array.
fn as_actual(nodes: &[Value]) -> Option<Value> {
    match nodes.len() {
        0 => None,
        1 => Some(nodes[0].clone()),
        _ => Some(Value::Array(nodes.to_vec())),
    }
}

#[test]
fn every_compliance_case_holds() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/jsonpath-cts/cts.json"
    ))
    .expect("vendored compliance suite");
    let suite: Value = serde_json::from_str(&text).expect("suite is JSON");
    let cases = suite["tests"].as_array().expect("tests array");
    assert_eq!(cases.len(), 703, "the whole suite is vendored");
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap_or_default();
        let selector = case["selector"].as_str().unwrap_or_default();
        let claim = |claimed: Value| {
            json!({"claims": [{"action_name": "cts", "verification_mode": "exact", "json_path": selector,
                               "claimed_value": claimed, "record_id": "r"}]})
        };
        if case["invalid_selector"] == json!(true) {
            let payload = Payload::parse(&claim(Value::Null)).expect("payload");
            let result = &evaluate(&payload, |_| Evidence::Json(&Value::Null)).per_claim[0];
            if result.reason != Reason::InvalidPath {
                failures.push(format!(
                    "{name}: {selector} should be invalid, got {:?}",
                    result.reason
                ));
            }
            continue;
        }
        let document = &case["document"];
        let expectations: Vec<Vec<Value>> = match (&case["result"], &case["results"]) {
            (Value::Array(nodes), _) => vec![nodes.clone()],
            (_, Value::Array(alternatives)) => alternatives
                .iter()
                .map(|nodes| nodes.as_array().cloned().unwrap_or_default())
                .collect(),
            _ => panic!("{name}: no expected result"),
        };
        let matched = expectations.iter().any(|nodes| {
            let payload =
                Payload::parse(&claim(as_actual(nodes).unwrap_or(Value::Null))).expect("payload");
            let result = &evaluate(&payload, |_| Evidence::Json(document)).per_claim[0];
            match as_actual(nodes) {
                None => result.reason == Reason::PathNotFound,
                Some(_) => result.result == Outcome::Pass,
            }
        });
        if !matched {
            failures.push(format!(
                "{name}: {selector} on {document} expected {:?}",
                expectations
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
