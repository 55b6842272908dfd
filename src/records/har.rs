//! HAR 1.2 (`log.entries`) to records and back: how records are imported and exported. HandoffRail's own
//! fields travel in the entry's `_handoffrail` object (HAR allows custom fields starting with `_`).

use super::import::Incoming;
use super::model::{Header, Provenance, Record, SealedRecord, Timings};
use crate::timestamp::Timestamp;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};
use uuid::Uuid;

/// The longest exchange an entry may state (about 31 years), so that its end is always a representable instant.
pub const MAX_ELAPSED_MS: f64 = 1e12;

/// Why an entry could not be read; `entry` is its index in `log.entries`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("log.entries[{entry}]: {message}")]
pub struct InvalidHar {
    pub entry: usize,
    pub message: String,
}

/// An optional text field: absent or `null` is `None`; anything but a string is refused, so what the
/// OpenAPI document shows (`import_schema`) is exactly what is read.
fn text<'a>(object: &'a Value, field: &str) -> Result<Option<&'a str>, String> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(format!("{field} must be a string")),
    }
}

/// HAR headers: a list of `{name, value}` texts, in order; absent or `null` is none.
fn headers(list: Option<&Value>, field: &str) -> Result<Vec<Header>, String> {
    let items = match list {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(format!("{field} must be a list")),
    };
    items
        .iter()
        .map(|header| {
            let named = |part| {
                text(header, part)?
                    .map(String::from)
                    .ok_or_else(|| format!("{field}: every header needs a text {part}"))
            };
            Ok(Header {
                name: named("name")?,
                value: named("value")?,
            })
        })
        .collect()
}

/// A body from `postData`/`content`: `text`, base64-decoded when `encoding` says so.
fn body(part: Option<&Value>, field: &str) -> Result<Vec<u8>, String> {
    let part = match part {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(part @ Value::Object(_)) => part,
        Some(_) => return Err(format!("{field} must be an object")),
    };
    let content = text(part, "text")
        .map_err(|error| format!("{field}.{error}"))?
        .unwrap_or_default();
    match text(part, "encoding").map_err(|error| format!("{field}.{error}"))? {
        Some("base64") => STANDARD
            .decode(content.trim())
            .map_err(|error| format!("{field} is not valid base64: {error}")),
        Some(other) => Err(format!("{field}: unsupported body encoding {other:?}")),
        None => Ok(content.as_bytes().to_vec()),
    }
}

/// An optional number field: absent or `null` is `None`; anything but a number is refused. What a value
/// means (HAR writes -1 or 0 for "unknown") is the caller's to decide.
fn number(object: &Value, field: &str) -> Result<Option<f64>, String> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(number)) => Ok(number.as_f64()),
        Some(_) => Err(format!("{field} must be a number")),
    }
}

/// Reads the entries of a HAR document as records of `tenant`, with provenance `import` and new ids; an entry
/// that carries a sealed record (as our export writes) arrives with that record's seal, see [`Incoming`].
pub fn records_from_har(document: &Value, tenant: &str) -> Result<Vec<Incoming>, InvalidHar> {
    let entries = document
        .pointer("/log/entries")
        .and_then(Value::as_array)
        .ok_or_else(|| InvalidHar {
            entry: 0,
            message: "a HAR document needs log.entries".into(),
        })?;
    entries
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            incoming_from_entry(entry, tenant).map_err(|message| InvalidHar {
                entry: index,
                message,
            })
        })
        .collect()
}

/// The entry as a reader of the HAR sees it. When it also carries a sealed record, that record is taken with the
/// entry's visible exchange laid over it: an edit anywhere a reader would look (URL, headers, bodies, status,
/// run tags) then no longer matches the seal, while an untouched export verifies exactly.
fn incoming_from_entry(entry: &Value, tenant: &str) -> Result<Incoming, String> {
    let visible = record_from_entry(entry, tenant)?;
    let Some(carried) = entry.pointer("/_handoffrail/record") else {
        return Ok(Incoming {
            record: visible,
            seal: None,
        });
    };
    let not_sealed = |error: String| format!("_handoffrail.record is not a sealed record: {error}");
    let (mut record, seal) =
        super::import::record_and_seal(carried).map_err(|error| not_sealed(error.to_string()))?;
    let seal = seal.ok_or_else(|| not_sealed("missing field `seal`".into()))?;
    record.run_id = visible.run_id;
    record.agent_id = visible.agent_id;
    record.action = visible.action;
    record.method = visible.method;
    record.url = visible.url;
    record.request_headers = visible.request_headers;
    record.request_body = visible.request_body;
    record.status = visible.status;
    record.response_headers = visible.response_headers;
    record.response_body = visible.response_body;
    Ok(Incoming {
        record,
        seal: Some(seal),
    })
}

/// An imported record's URL must be absolute, as the proxy records it (`url: <why not>` otherwise).
pub fn absolute_url(url: &str) -> Result<(), String> {
    url::Url::parse(url)
        .map(drop)
        .map_err(|error| format!("url: {error}"))
}

fn record_from_entry(entry: &Value, tenant: &str) -> Result<Record, String> {
    let request = entry
        .get("request")
        .filter(|value| value.is_object())
        .ok_or("missing request")?;
    let response = entry
        .get("response")
        .filter(|value| value.is_object())
        .ok_or("missing response")?;
    let method = text(request, "method")
        .map_err(|error| format!("request.{error}"))?
        .filter(|method| !method.is_empty())
        .ok_or("missing request.method")?;
    let url = text(request, "url")
        .map_err(|error| format!("request.{error}"))?
        .ok_or("missing request.url")?;
    absolute_url(url).map_err(|error| format!("request.{error}"))?;
    let started_at = text(entry, "startedDateTime")?
        .and_then(Timestamp::parse)
        .ok_or("missing or invalid startedDateTime")?;
    let ended_at = match number(entry, "time")? {
        // HAR's "unknown", as our export writes it.
        None | Some(-1.0) => None,
        Some(ms) if (0.0..=MAX_ELAPSED_MS).contains(&ms) => Some(
            started_at
                .micros()
                .checked_add((ms * 1000.0) as i64)
                .and_then(Timestamp::from_micros)
                .ok_or("time: the exchange would end past the last representable instant")?,
        ),
        Some(_) => {
            return Err(format!(
                "time must be -1 (unknown) or 0 to {MAX_ELAPSED_MS} milliseconds"
            ))
        }
    };
    let not_integral = || "response.status must be an integer".to_string();
    let status = match number(response, "status").map_err(|_| not_integral())? {
        None => None,
        Some(code) if code.fract() == 0.0 => (100.0..=599.0).contains(&code).then_some(code as u16),
        Some(_) => return Err(not_integral()),
    };
    let request_body = body(request.get("postData"), "request.postData")?;
    let response_body = body(response.get("content"), "response.content")?;
    let request_headers = headers(request.get("headers"), "request.headers")?;
    let response_headers = headers(response.get("headers"), "response.headers")?;
    let ours = match entry.get("_handoffrail") {
        None | Some(Value::Null) => &Value::Null,
        Some(ours @ Value::Object(_)) => ours,
        Some(_) => return Err("_handoffrail must be an object".into()),
    };
    let optional = |field: &str| {
        text(ours, field)
            .map(|value| value.map(String::from))
            .map_err(|error| format!("_handoffrail.{error}"))
    };
    let upstream_error = match optional("upstream_error")? {
        Some(error) => Some(error),
        None => text(response, "_error")
            .map_err(|error| format!("response.{error}"))?
            .map(String::from),
    };
    Ok(Record {
        id: Uuid::now_v7(),
        tenant_id: tenant.to_string(),
        run_id: optional("run_id")?,
        agent_id: optional("agent_id")?,
        action: optional("action")?,
        method: method.to_ascii_uppercase(),
        url: url.to_string(),
        request_headers,
        request_body_size: request_body.len() as u64,
        request_body,
        request_truncated: false,
        status,
        response_headers,
        response_body_size: response_body.len() as u64,
        response_body,
        response_truncated: false,
        timings: Timings {
            started_at,
            first_byte_at: None,
            ended_at,
        },
        upstream_error,
        aborted: false,
        provenance: Provenance::Import,
        trusted: false,
    })
}

/// A HAR 1.2 document of sealed records; bodies as base64, seals in `_handoffrail`.
pub fn har_from_records(records: &[SealedRecord]) -> Value {
    let entries: Vec<Value> = records.iter().map(entry_from_record).collect();
    json!({"log": {"version": "1.2", "creator": {"name": "handoffrail", "version": env!("CARGO_PKG_VERSION")}, "entries": entries}})
}

fn entry_from_record(sealed: &SealedRecord) -> Value {
    let record = &sealed.record;
    let headers = |list: &[Header]| -> Vec<Value> {
        list.iter()
            .map(|header| json!({"name": header.name, "value": header.value}))
            .collect()
    };
    // HAR's "unknown" when the record has no end, or one the HAR import would refuse (before the start, or
    // further from it than MAX_ELAPSED_MS); the sealed record below keeps the timings as stored.
    let elapsed_ms = record
        .timings
        .ended_at
        .map(|end| (end.micros() - record.timings.started_at.micros()) as f64 / 1000.0)
        .filter(|ms| (0.0..=MAX_ELAPSED_MS).contains(ms))
        .unwrap_or(-1.0);
    json!({
        "startedDateTime": record.timings.started_at.to_string(),
        "time": elapsed_ms,
        "request": {
            "method": record.method, "url": record.url, "httpVersion": "HTTP/1.1",
            "headers": headers(&record.request_headers), "queryString": [], "cookies": [],
            "headersSize": -1, "bodySize": record.request_body_size,
            "postData": {"mimeType": "", "text": STANDARD.encode(&record.request_body), "encoding": "base64"}
        },
        "response": {
            "status": record.status.unwrap_or(0), "statusText": "", "httpVersion": "HTTP/1.1",
            "headers": headers(&record.response_headers), "cookies": [], "redirectURL": "",
            "headersSize": -1, "bodySize": record.response_body_size,
            "content": {"size": record.response_body_size, "mimeType": "", "text": STANDARD.encode(&record.response_body), "encoding": "base64"}
        },
        "cache": {},
        "timings": {"send": 0, "wait": elapsed_ms.max(0.0), "receive": 0},
        // The sealed record itself, so an exported HAR can be verified offline with the public key.
        "_handoffrail": {"run_id": record.run_id, "agent_id": record.agent_id, "action": record.action, "record": sealed}
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{Integrity, RecordKey};

    const HAR: &str = r#"{"log": {"version": "1.2", "creator": {"name": "browser", "version": "1"}, "entries": [
      {"startedDateTime": "2026-11-21T10:00:00.000+01:00", "time": 42.5,
       "request": {"method": "get", "url": "https://api.example.com/v1/orders/7?expand=a&expand=b",
                   "headers": [{"name": "Accept", "value": "application/json"}, {"name": "X-Trace", "value": "1"}, {"name": "X-Trace", "value": "2"}]},
       "response": {"status": 200, "headers": [{"name": "Content-Type", "value": "application/json"}],
                    "content": {"size": 16, "mimeType": "application/json", "text": "{\"total\": 89.5}"}},
       "_handoffrail": {"run_id": "run-1", "action": "get_order", "agent_id": "sales-01"}},
      {"startedDateTime": "2026-11-21T10:00:01Z", "time": 3,
       "request": {"method": "POST", "url": "https://api.example.com/v1/blobs", "postData": {"mimeType": "application/octet-stream", "text": "AAEC/w==", "encoding": "base64"}},
       "response": {"status": 201, "content": {"text": ""}}}
    ]}}"#;

    #[test]
    fn entries_become_import_records() {
        let document: Value = serde_json::from_str(HAR).expect("har");
        let records = records_from_har(&document, "default").expect("records");
        assert_eq!(records.len(), 2);
        assert!(records.iter().all(|incoming| incoming.seal.is_none()));
        let first = &records[0].record;
        assert_eq!((first.method.as_str(), first.status), ("GET", Some(200)));
        assert_eq!(
            first.url,
            "https://api.example.com/v1/orders/7?expand=a&expand=b"
        );
        assert_eq!(first.response_body, br#"{"total": 89.5}"#);
        assert_eq!(
            first.request_headers.len(),
            3,
            "repeated headers stay repeated"
        );
        assert_eq!(
            first.timings.started_at.to_string(),
            "2026-11-21T09:00:00.000000Z"
        );
        assert_eq!(
            first.timings.ended_at.map(|end| end.to_string()).as_deref(),
            Some("2026-11-21T09:00:00.042500Z")
        );
        assert_eq!(
            (first.run_id.as_deref(), first.action.as_deref()),
            (Some("run-1"), Some("get_order"))
        );
        assert_eq!(first.provenance, Provenance::Import);
        assert_eq!(
            records[1].record.request_body,
            [0, 1, 2, 255],
            "base64 bodies are decoded"
        );
    }

    #[test]
    fn broken_entries_are_named() {
        let cases = [
            (r#"{"log": {}}"#, "log.entries"),
            (
                r#"{"log": {"entries": [{"request": {"url": "https://a.example/"}, "response": {}, "startedDateTime": "2026-11-21T10:00:00Z"}]}}"#,
                "request.method",
            ),
            (
                r#"{"log": {"entries": [{"request": {"method": "GET", "url": "not a url"}, "response": {}, "startedDateTime": "2026-11-21T10:00:00Z"}]}}"#,
                "request.url",
            ),
            (
                r#"{"log": {"entries": [{"request": {"method": "GET", "url": "https://a.example/"}, "response": {}}]}}"#,
                "startedDateTime",
            ),
            (
                r#"{"log": {"entries": [{"request": {"method": "GET", "url": "https://a.example/"}, "response": {"content": {"text": "%%%", "encoding": "base64"}}, "startedDateTime": "2026-11-21T10:00:00Z"}]}}"#,
                "base64",
            ),
        ];
        for (text, fragment) in cases {
            let document: Value = serde_json::from_str(text).expect("json");
            let error = records_from_har(&document, "t").expect_err(text);
            assert!(error.to_string().contains(fragment), "{text}: {error}");
        }
    }

    /// The entries of `HAR`, sealed by `key`.
    fn sealed_fixture(key: &RecordKey) -> Vec<SealedRecord> {
        let document: Value = serde_json::from_str(HAR).expect("har");
        records_from_har(&document, "default")
            .expect("records")
            .into_iter()
            .map(|incoming| key.seal(incoming.record))
            .collect()
    }

    #[test]
    fn exported_har_reads_back_to_the_same_exchange() {
        let key = RecordKey::generate();
        let sealed = sealed_fixture(&key);
        let exported = har_from_records(&sealed);
        let again = records_from_har(&exported, "default").expect("re-import");
        for (original, copy) in sealed.iter().zip(&again) {
            assert_eq!(copy.seal.as_ref(), Some(&original.seal));
            assert_eq!(
                key.verify(&SealedRecord {
                    record: copy.record.clone(),
                    seal: original.seal.clone()
                }),
                Integrity::Valid,
                "an untouched export reads back to exactly the sealed record"
            );
            let copy = &copy.record;
            let original = &original.record;
            assert_eq!(
                (&copy.method, &copy.url, copy.status),
                (&original.method, &original.url, original.status)
            );
            assert_eq!(
                (&copy.request_body, &copy.response_body),
                (&original.request_body, &original.response_body)
            );
            assert_eq!(
                (&copy.request_headers, &copy.run_id, &copy.action),
                (
                    &original.request_headers,
                    &original.run_id,
                    &original.action
                )
            );
        }
        let carried: SealedRecord =
            serde_json::from_value(exported["log"]["entries"][0]["_handoffrail"]["record"].clone())
                .expect("sealed record in the export");
        assert!(
            key.verify(&carried).is_valid(),
            "the export carries a verifiable copy of each record"
        );
    }

    #[test]
    fn an_edit_to_what_a_reader_sees_breaks_the_carried_seal() {
        let key = RecordKey::generate();
        let sealed = sealed_fixture(&key);
        let exported = har_from_records(&sealed);
        let edits: [(&str, Value); 5] = [
            (
                "/response/content/text",
                json!(STANDARD.encode(br#"{"total": 98.5}"#)),
            ),
            ("/response/status", json!(201)),
            ("/request/url", json!("https://api.example.com/v1/orders/8")),
            ("/_handoffrail/run_id", json!("run-2")),
            (
                "/_handoffrail/record/timings/started_at",
                json!("2026-11-21T09:00:01.000000Z"),
            ),
        ];
        for (pointer, value) in edits {
            let mut edited = exported.clone();
            *edited
                .pointer_mut(&format!("/log/entries/0{pointer}"))
                .expect(pointer) = value;
            let incoming = records_from_har(&edited, "default")
                .expect("still a HAR")
                .swap_remove(0);
            let seal = incoming.seal.expect("the carried seal");
            let verdict = key.verify(&SealedRecord {
                record: incoming.record,
                seal,
            });
            assert_eq!(verdict, Integrity::DigestMismatch, "{pointer}");
        }
        let mut garbage = exported.clone();
        garbage["log"]["entries"][0]["_handoffrail"]["record"] = json!({"seal": 1});
        let error = records_from_har(&garbage, "default").expect_err("not a sealed record");
        assert!(error.to_string().contains("_handoffrail.record"), "{error}");
    }
}
