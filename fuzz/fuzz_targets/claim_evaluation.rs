//! A claim's JSONPath (first line) against a record's JSON body (the rest), in every mode, under a small
//! budget: any input yields a verdict, never a panic, a hang or unbounded memory.
#![no_main]

use handoffrail::verify::{evaluate_within, Evidence, Limits, Payload};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (path, document) = text.split_once('\n').unwrap_or((text, "null"));
    let Ok(document) = serde_json::from_str::<Value>(document) else {
        return;
    };
    let limits = Limits {
        steps: 200_000,
        ..Limits::default()
    };
    let claims: Vec<Value> = [
        json!({"verification_mode": "exact", "claimed_value": document.clone()}),
        json!({"verification_mode": "field_extraction", "claimed_value": "x"}),
        json!({"verification_mode": "range_threshold", "range_min": 0, "range_max": 10, "aggregate": "mean"}),
        json!({"verification_mode": "presence", "claimed_value": true}),
    ]
    .into_iter()
    .map(|mut claim| {
        claim["action_name"] = json!("fuzz");
        claim["json_path"] = json!(path);
        claim["record_id"] = json!("r");
        claim
    })
    .collect();
    let payload = Payload::parse_within(&json!({ "claims": claims }), &limits)
        .expect("an object with claims");
    let evaluation = evaluate_within(&payload, |_| Evidence::Json(&document), &limits);
    assert_eq!(evaluation.per_claim.len(), 4);
    for result in &evaluation.per_claim {
        let shown = serde_json::to_string(result).expect("results serialize");
        assert!(shown.len() < 64 * 1024, "a result stays bounded");
    }
});
