//! Bringing records from outside (HAR 1.2 or native JSON) in as evidence: parse, redact, mark trust, seal.
//! Shared by `POST /api/v1/records` and the offline `handoffrail evaluate`, so both treat a file alike.
//!
//! A record that arrives with a seal by a key in the importer's [`Keyring`] (our own export, or one whose
//! public key the operator supplied) is checked as it arrived. If it verifies it keeps its id and provenance
//! and is re-sealed for its new tenant; if not, it is stored with the broken seal it came with, so every later
//! look at it (`signature_valid`, the evaluation gate) sees the tampering. Anything else is new evidence of
//! provenance `import`, with a new id, sealed by the importer.

use super::har::{absolute_url, records_from_har, InvalidHar};
use super::model::{Provenance, Record, Seal, SealedRecord};
use super::signing::{Keyring, RecordKey};
use super::store::RecordStore;
use crate::persistence::StoreError;
use crate::rules::store::TrustStore;
use crate::rules::{Redaction, Rules, TrustList};
use serde::Deserialize;
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

/// A record as read from an import, with the seal it carried, if any.
#[derive(Clone, Debug)]
pub struct Incoming {
    pub record: Record,
    pub seal: Option<Seal>,
}

/// Reads a HAR document or `{"records": [...]}` into records of `tenant` with provenance `import`.
pub fn parse_document(document: &Value, tenant: &str) -> Result<Vec<Incoming>, InvalidImport> {
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
pub fn parse_text(text: &str, tenant: &str) -> Result<Vec<Incoming>, InvalidImport> {
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

/// A record as `GET /records/{id}` or the `jsonl` export writes it; its `seal`, when present, comes along.
/// Its method and URL must be what a HAR import takes: a method, an absolute URL.
fn native(item: &Value, index: usize, tenant: &str) -> Result<Incoming, InvalidImport> {
    let invalid = |message: String| InvalidImport::Record { index, message };
    let (mut record, seal) = record_and_seal(item).map_err(|error| invalid(error.to_string()))?;
    if record.method.is_empty() {
        return Err(invalid("method must not be empty".into()));
    }
    absolute_url(&record.url).map_err(invalid)?;
    if seal.is_none() {
        record.tenant_id = tenant.to_string();
    }
    Ok(Incoming { record, seal })
}

/// A record as exported, with its `seal` when it has one. Read field by field rather than as a
/// [`super::SealedRecord`], whose flattening cannot carry numbers beyond 64 bits in fields it ignores.
pub fn record_and_seal(item: &Value) -> serde_json::Result<(Record, Option<Seal>)> {
    let record = Record::deserialize(item)?;
    let seal = match item.get("seal") {
        Some(seal) => Some(Seal::deserialize(seal)?),
        None => None,
    };
    Ok((record, seal))
}

/// Who imports, and what the import applies: the same for the API and the offline CLI.
pub struct Importer<'a> {
    pub tenant: &'a str,
    pub redaction: &'a Redaction,
    pub trust: &'a TrustList,
    /// Seals from these keys are checked and honoured.
    pub keyring: &'a Keyring,
    /// Seals what is stored.
    pub key: &'a RecordKey,
    /// Keep the ids of honoured records from other tenants too: right for a private store that holds only
    /// this import (offline evaluation), wrong for a shared one, where the copy would collide with the original.
    pub keep_foreign_ids: bool,
}

impl Importer<'_> {
    /// Redacts (before anything is stored), marks `trusted` against the trust list, and seals each record,
    /// honouring the seals it arrived with as the module documentation describes.
    pub fn prepare(&self, records: Vec<Incoming>) -> Vec<SealedRecord> {
        records
            .into_iter()
            .map(|incoming| self.prepare_one(incoming))
            .collect()
    }

    fn prepare_one(&self, Incoming { mut record, seal }: Incoming) -> SealedRecord {
        let honoured = seal.filter(|seal| self.keyring.knows(&seal.key_id));
        let verdict = honoured.map(|seal| {
            let arrived = SealedRecord {
                record: record.clone(),
                seal,
            };
            let valid = self.keyring.verify(&arrived).is_valid();
            (arrived.seal, valid)
        });
        let keep_id = record.tenant_id == self.tenant || self.keep_foreign_ids;
        if verdict.is_none() || !keep_id {
            record.id = Uuid::now_v7();
        }
        if !matches!(verdict, Some((_, true))) {
            record.provenance = Provenance::Import;
        }
        record.tenant_id = self.tenant.to_string();
        record.redact(self.redaction);
        match verdict {
            Some((seal, false)) => SealedRecord { record, seal },
            _ => {
                record.trusted = self.trust.covers(&record.method, &record.url);
                self.key.seal(record)
            }
        }
    }
}

/// What an import into a tenant's evidence stored.
#[derive(Debug)]
pub struct Imported {
    /// The stored records' ids, in the order they arrived.
    pub ids: Vec<Uuid>,
    /// Ids already stored (a re-import of records that kept their ids): left as they were.
    pub already_stored: Vec<Uuid>,
}

/// Imports `records` into `tenant`'s shared evidence (docs/interceptor.md "Records API"): redacted by
/// the live rules, marked trusted by the rules' and the tenant's trusted endpoints, sealed by the server's
/// `key` (seals of that key alone are honoured; ids of records from other tenants are replaced), and
/// stored in one batch.
pub async fn into_tenant<S: RecordStore + TrustStore + ?Sized>(
    store: &S,
    rules: &Rules,
    key: &RecordKey,
    tenant: &str,
    records: Vec<Incoming>,
) -> Result<Imported, StoreError> {
    let trust = TrustList::of_tenant(store, rules, tenant).await?;
    let importer = Importer {
        tenant,
        redaction: &rules.redaction,
        trust: &trust,
        keyring: &Keyring::of(key),
        key,
        keep_foreign_ids: false,
    };
    let sealed = importer.prepare(records);
    let already_stored = store.insert_records(&sealed).await?;
    let ids = sealed
        .iter()
        .map(|sealed| sealed.record.id)
        .filter(|id| !already_stored.contains(id))
        .collect();
    Ok(Imported {
        ids,
        already_stored,
    })
}
