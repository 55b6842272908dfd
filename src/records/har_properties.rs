//! HAR import over arbitrary entries: whatever a file holds, reading it answers records or a clear error, never a
//! panic or an overflow (a `time` of 1e300 once overflowed the end's arithmetic), and every end it computes is at
//! or after its start.

use super::har::records_from_har;
use proptest::prelude::*;
use serde_json::{json, Value};

/// Any JSON value, with numbers at the edges of what doubles and 64-bit integers hold.
fn any_json() -> impl Strategy<Value = Value> {
    let number = prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(
            |float| serde_json::Number::from_f64(float).map_or(Value::Null, Value::Number)
        ),
        Just(json!(1e300)),
        Just(json!(-1e300)),
        Just(json!(-1)),
        Just(json!(1e12)),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        number,
        ".{0,12}".prop_map(Value::from),
        Just(json!("NaN")),
        Just(json!("9999-12-31T23:59:59Z")),
        Just(json!("0000-01-01T00:00:00Z")),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(".{0,6}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// An entry that is well formed except where the strategy puts arbitrary values.
fn entry() -> impl Strategy<Value = Value> {
    (any_json(), any_json(), any_json(), any_json(), any_json(), any_json()).prop_map(
        |(time, started, status, headers, content, ours)| {
            json!({
                "startedDateTime": if started.is_string() { started } else { json!("2026-11-21T10:00:00Z") },
                "time": time,
                "request": {"method": "GET", "url": "https://api.example.com/v1/orders/7", "headers": headers},
                "response": {"status": status, "content": content},
                "_handoffrail": ours,
            })
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_entry_reads_or_is_refused_without_panicking(entries in prop::collection::vec(entry(), 1..4)) {
        let document = json!({"log": {"entries": entries}});
        if let Ok(records) = records_from_har(&document, "t") {
            for incoming in records {
                let timings = &incoming.record.timings;
                if let Some(ended) = timings.ended_at {
                    prop_assert!(ended.micros() >= timings.started_at.micros());
                }
            }
        }
    }

    #[test]
    fn any_document_reads_or_is_refused_without_panicking(document in any_json()) {
        let _ = records_from_har(&document, "t");
        let _ = super::import::parse_document(&document, "t");
    }
}
