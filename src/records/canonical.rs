//! The canonical form of a record: its JSON with object keys sorted by their UTF-8 bytes, no insignificant
//! whitespace, strings escaped as serde_json escapes them, numbers as written. Deterministic, so a digest
//! computed anywhere (here or by an offline verifier) agrees.

use super::model::{Header, Record};
use crate::timestamp::Timestamp;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::Write;

/// The canonical form of a record: the same bytes as `canonical_json(&serde_json::to_value(record))` (a test
/// holds the two equal for arbitrary records), written field by field without building a JSON tree, because
/// the recorder seals every proxied exchange.
pub fn canonical_bytes(record: &Record) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(768 + (record.request_body.len() + record.response_body.len()) * 4 / 3);
    write_record(record, Bodies::Included, &mut out);
    out
}

/// The record without its bodies in the same form: what the stores keep beside the body columns (it parses
/// back into a `Record` with empty bodies).
pub fn document_without_bodies(record: &Record) -> String {
    let mut out = Vec::with_capacity(768);
    write_record(record, Bodies::Left, &mut out);
    // Only JSON text was written, and serde_json escapes strings into valid UTF-8.
    String::from_utf8(out).unwrap_or_default()
}

#[derive(Clone, Copy, PartialEq)]
enum Bodies {
    Included,
    Left,
}

/// Writes `{"key":value,...}` with the keys in the order given, which must be sorted by their bytes.
struct Fields<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Fields<'a> {
    fn open(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Fields { out, first: true }
    }

    fn key(&mut self, key: &str) -> &mut Vec<u8> {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        write_string(key, self.out);
        self.out.push(b':');
        self.out
    }

    fn string(&mut self, key: &str, value: &str) {
        write_string(value, self.key(key));
    }

    fn optional_string(&mut self, key: &str, value: Option<&str>) {
        match value {
            Some(value) => self.string(key, value),
            None => self.key(key).extend_from_slice(b"null"),
        }
    }

    fn number(&mut self, key: &str, value: u64) {
        let _ = write!(self.key(key), "{value}");
    }

    fn boolean(&mut self, key: &str, value: bool) {
        let text: &[u8] = if value { b"true" } else { b"false" };
        self.key(key).extend_from_slice(text);
    }

    fn timestamp(&mut self, key: &str, value: Option<&Timestamp>) {
        let out = self.key(key);
        match value {
            Some(value) => {
                // Timestamps print digits, dashes, colons, a dot and `Z`: nothing to escape.
                let _ = write!(out, "\"{value}\"");
            }
            None => out.extend_from_slice(b"null"),
        }
    }

    fn base64(&mut self, key: &str, bytes: &[u8]) {
        let out = self.key(key);
        out.push(b'"');
        let start = out.len();
        out.resize(start + bytes.len().div_ceil(3) * 4, 0);
        let written = STANDARD.encode_slice(bytes, &mut out[start..]).unwrap_or(0);
        out.truncate(start + written);
        out.push(b'"');
    }

    fn headers(&mut self, key: &str, headers: &[Header]) {
        let out = self.key(key);
        out.push(b'[');
        for (index, header) in headers.iter().enumerate() {
            if index > 0 {
                out.push(b',');
            }
            let mut fields = Fields::open(out);
            fields.string("name", &header.name);
            fields.string("value", &header.value);
            fields.close();
        }
        out.push(b']');
    }

    fn close(self) {
        self.out.push(b'}');
    }
}

fn write_record(record: &Record, bodies: Bodies, out: &mut Vec<u8>) {
    let mut fields = Fields::open(out);
    fields.boolean("aborted", record.aborted);
    fields.optional_string("action", record.action.as_deref());
    fields.optional_string("agent_id", record.agent_id.as_deref());
    let mut id = uuid::Uuid::encode_buffer();
    fields.string("id", record.id.hyphenated().encode_lower(&mut id));
    fields.string("method", &record.method);
    fields.string("provenance", record.provenance.as_str());
    if bodies == Bodies::Included {
        fields.base64("request_body", &record.request_body);
    }
    fields.number("request_body_size", record.request_body_size);
    fields.headers("request_headers", &record.request_headers);
    fields.boolean("request_truncated", record.request_truncated);
    if bodies == Bodies::Included {
        fields.base64("response_body", &record.response_body);
    }
    fields.number("response_body_size", record.response_body_size);
    fields.headers("response_headers", &record.response_headers);
    fields.boolean("response_truncated", record.response_truncated);
    fields.optional_string("run_id", record.run_id.as_deref());
    match record.status {
        Some(status) => fields.number("status", u64::from(status)),
        None => fields.key("status").extend_from_slice(b"null"),
    }
    fields.string("tenant_id", &record.tenant_id);
    let mut timings = Fields::open(fields.key("timings"));
    timings.timestamp("ended_at", record.timings.ended_at.as_ref());
    timings.timestamp("first_byte_at", record.timings.first_byte_at.as_ref());
    timings.timestamp("started_at", Some(&record.timings.started_at));
    timings.close();
    fields.boolean("trusted", record.trusted);
    fields.optional_string("upstream_error", record.upstream_error.as_deref());
    fields.string("url", &record.url);
    fields.close();
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
        other => {
            // Writing into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, other);
        }
    }
}

fn write_string(text: &str, out: &mut Vec<u8>) {
    // serde_json's escaping, written in place; writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, text);
}

/// SHA-256 of the canonical form, lower-case hex.
pub fn digest(record: &Record) -> String {
    hex(&Sha256::digest(canonical_bytes(record)))
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::model::{Provenance, Timings};
    use proptest::prelude::*;

    fn text() -> impl Strategy<Value = String> {
        // Any Unicode, control characters and quotes included.
        prop_oneof![
            "\\PC{0,12}",
            ".{0,6}",
            Just("\"\\\u{0}\u{1f}\u{7f}\u{2028}é😀".to_string())
        ]
    }

    fn timestamp() -> impl Strategy<Value = Timestamp> {
        (-62_135_596_800_000_000i64..253_402_300_799_999_999)
            .prop_map(|micros| Timestamp::from_micros(micros).expect("in range"))
    }

    fn headers() -> impl Strategy<Value = Vec<Header>> {
        prop::collection::vec(
            (text(), text()).prop_map(|(name, value)| Header { name, value }),
            0..4,
        )
    }

    prop_compose! {
        fn record()(
            id in any::<u128>(),
            (tenant_id, method, url) in (text(), text(), text()),
            (run_id, agent_id, action, upstream_error) in (
                prop::option::of(text()), prop::option::of(text()),
                prop::option::of(text()), prop::option::of(text())),
            (request_headers, response_headers) in (headers(), headers()),
            (request_body, response_body) in (
                prop::collection::vec(any::<u8>(), 0..64), prop::collection::vec(any::<u8>(), 0..64)),
            // Sizes are byte counts, read back up to `i64::MAX` (see `lax::unsigned`).
            (request_body_size, response_body_size, status) in (
                0..=i64::MAX as u64, 0..=i64::MAX as u64, prop::option::of(any::<u16>())),
            flags in any::<[bool; 5]>(),
            (started_at, first_byte_at, ended_at) in (
                timestamp(), prop::option::of(timestamp()), prop::option::of(timestamp())),
        ) -> Record {
            Record {
                id: uuid::Uuid::from_u128(id),
                tenant_id, run_id, agent_id, action, method, url,
                request_headers, request_body, request_body_size,
                request_truncated: flags[0],
                status, response_headers, response_body, response_body_size,
                response_truncated: flags[1],
                timings: Timings { started_at, first_byte_at, ended_at },
                upstream_error,
                aborted: flags[2],
                provenance: if flags[3] { Provenance::Proxy } else { Provenance::Import },
                trusted: flags[4],
            }
        }
    }

    proptest! {
        #[test]
        fn a_record_written_directly_equals_its_generic_canonical_form(record in record()) {
            let generic = canonical_json(&serde_json::to_value(&record).expect("serialises"));
            prop_assert_eq!(
                String::from_utf8(canonical_bytes(&record)).expect("utf8"),
                String::from_utf8(generic).expect("utf8")
            );
            // The stored document is the same without bodies, and reads back as the record.
            let document: Value = serde_json::from_str(&document_without_bodies(&record)).expect("json");
            let restored =
                Record::from_parts(document, record.request_body.clone(), record.response_body.clone());
            prop_assert_eq!(restored.expect("record"), record);
        }
    }

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
