//! A whole `POST /evaluations` body: parsing never panics, and a parsed payload evaluates to one result per
//! claim.
#![no_main]

use handoffrail::verify::{evaluate_within, Evidence, Limits, Payload};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let limits = Limits {
        steps: 200_000,
        ..Limits::default()
    };
    let Ok(payload) = Payload::parse_within(&body, &limits) else {
        return;
    };
    let document = json!({"order": {"id": 7, "total": 89.5, "items": [{"sku": "A", "qty": 2}]}});
    let evaluation = evaluate_within(&payload, |_| Evidence::Json(&document), &limits);
    assert_eq!(evaluation.per_claim.len(), payload.claims.len());
});
