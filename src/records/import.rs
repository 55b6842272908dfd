//! Bringing records from outside (HAR 1.2 or native JSON) in as evidence: parse, redact, mark trust, seal.
//! Shared by `POST /api/v1/records` and the offline `handoffrail evaluate`, so both treat a file alike.

use super::har::{records_from_har, InvalidHar};
use super::model::{Provenance, Record, SealedRecord};
use super::signing::RecordKey;
use crate::rules::{Redaction, TrustList};
use serde_json::Value;
use uuid::Uuid;

/// Most records one import may carry.
pub const MAX_IMPORT: usize = 10_000;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidImport {
    #[error(transparent)]
    Har(#[from] InvalidHar),
    #[error("records[{index}]: {message}")]
    Record { index: usize, message: String },
    #[error(
        "expected a HAR document (log.entries), {{\"records\": [...]}} or JSON lines of records"
    )]
    Shape,
    #[error("at most {MAX_IMPORT} records per import ({0} given)")]
    TooMany(usize),
}

/// Reads a HAR document or `{"records": [...]}` into records of `tenant` with provenance `import`.
pub fn parse_document(document: &Value, tenant: &str) -> Result<Vec<Record>, InvalidImport> {
    let records = if document.get("log").is_some() {
        records_from_har(document, tenant)?
    } else {
        let items = document
            .get("records")
            .and_then(Value::as_array)
            .ok_or(InvalidImport::Shape)?;
        items
            .iter()
            .enumerate()
            .map(|(index, item)| native(item, index, tenant))
            .collect::<Result<Vec<_>, _>>()?
    };
    if records.len() > MAX_IMPORT {
        return Err(InvalidImport::TooMany(records.len()));
    }
    Ok(records)
}

/// Reads JSON lines of records (the `jsonl` export), or a JSON document, whichever `text` is.
pub fn parse_text(text: &str, tenant: &str) -> Result<Vec<Record>, InvalidImport> {
    if let Ok(document) = serde_json::from_str::<Value>(text) {
        return parse_document(&document, tenant);
    }
    let records = text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            let item: Value =
                serde_json::from_str(line).map_err(|error| InvalidImport::Record {
                    index,
                    message: error.to_string(),
                })?;
            native(&item, index, tenant)
        })
        .collect::<Result<Vec<_>, _>>()?;
    if records.len() > MAX_IMPORT {
        return Err(InvalidImport::TooMany(records.len()));
    }
    Ok(records)
}

fn native(item: &Value, index: usize, tenant: &str) -> Result<Record, InvalidImport> {
    let mut record: Record =
        serde_json::from_value(item.clone()).map_err(|error| InvalidImport::Record {
            index,
            message: error.to_string(),
        })?;
    record.id = Uuid::now_v7();
    record.tenant_id = tenant.to_string();
    record.provenance = Provenance::Import;
    Ok(record)
}

/// Redacts (before anything is stored), marks `trusted` against the trust list, and seals each record.
pub fn prepare(
    records: Vec<Record>,
    redaction: &Redaction,
    trust: &TrustList,
    key: &RecordKey,
) -> Vec<SealedRecord> {
    records
        .into_iter()
        .map(|mut record| {
            redaction.headers(&mut record.request_headers);
            redaction.headers(&mut record.response_headers);
            record.url = redaction.url(&record.url);
            record.trusted = trust.covers(&record.method, &record.url);
            key.seal(record)
        })
        .collect()
}
