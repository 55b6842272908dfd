//! The canonical form of a record: its JSON with object keys sorted by their UTF-8 bytes, no insignificant
//! whitespace, strings escaped as serde_json escapes them, numbers as written. Deterministic, so a digest
//! computed anywhere (here or by an offline verifier) agrees.

use super::model::Record;
use serde_json::Value;
use sha2::{Digest, Sha256};

pub fn canonical_bytes(record: &Record) -> Vec<u8> {
    // A record always serialises: its fields are strings, numbers, booleans and base64 text.
    let value = serde_json::to_value(record).unwrap_or(Value::Null);
    canonical_json(&value)
}

pub fn canonical_json(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    write(value, &mut out);
    out
}

fn write(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|(a, _), (b, _)| a.as_bytes().cmp(b.as_bytes()));
            out.push(b'{');
            for (index, (key, item)) in entries.into_iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_string(key, out);
                out.push(b':');
                write(item, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write(item, out);
            }
            out.push(b']');
        }
        Value::String(text) => write_string(text, out),
        other => out.extend_from_slice(other.to_string().as_bytes()),
    }
}

fn write_string(text: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(Value::String(text.to_string()).to_string().as_bytes());
}

/// SHA-256 of the canonical form, lower-case hex.
pub fn digest(record: &Record) -> String {
    hex(&Sha256::digest(canonical_bytes(record)))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keys_are_sorted_and_whitespace_dropped() {
        let value: Value =
            serde_json::from_str(r#"{ "b": [1, {"z": null, "a": "é\n"}], "a": 1.50, "A": true }"#)
                .expect("json");
        assert_eq!(
            String::from_utf8(canonical_json(&value)).expect("utf8"),
            r#"{"A":true,"a":1.50,"b":[1,{"a":"é\n","z":null}]}"#
        );
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| serde_json::json!(n)),
            "\\PC{0,10}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 32, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::vec(("\\PC{0,4}", inner), 0..5)
                    .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn canonical_form_is_idempotent_and_order_blind(value in json_value()) {
            let once = canonical_json(&value);
            let reparsed: Value = serde_json::from_slice(&once).expect("canonical form is JSON");
            prop_assert_eq!(canonical_json(&reparsed), once.clone());
            // Reversing every object's key order changes nothing.
            fn reversed(value: &Value) -> Value {
                match value {
                    Value::Object(map) => Value::Object(map.iter().rev().map(|(k, v)| (k.clone(), reversed(v))).collect()),
                    Value::Array(items) => Value::Array(items.iter().map(reversed).collect()),
                    other => other.clone(),
                }
            }
            prop_assert_eq!(canonical_json(&reversed(&value)), once);
        }
    }
}
