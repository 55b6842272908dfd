//! Running an evaluation (evaluator.md): resolve the evidence each claim names, pass every record through
//! the integrity, provenance and trust gates, hand the survivors to the pure evaluator, store the verdict.
//! This is the thin layer of I/O around `verify`; every decision it makes is recorded as a reason code.

mod stored;

pub use stored::{storable_payload, EvaluationQuery, StoredEvaluation};

use crate::records::{Provenance, RecordKey, RecordQuery, SealedRecord};
use crate::rules::{EndpointPattern, Rules, TrustList};
use crate::store::{Store, StoreError};
use crate::timestamp::Timestamp;
use crate::verify::claim::Check;
use crate::verify::{self, Evidence, EvidenceRef, Payload};
use serde_json::Value;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// A record id minted this recently may still be in the recorder's batch: wait for it before calling it
/// missing (evaluator.md "Evidence freshness").
const FRESH: Duration = Duration::from_secs(5);
const FRESH_WAIT: Duration = Duration::from_secs(2);
const FRESH_POLL: Duration = Duration::from_millis(50);
/// How far back an `[[actions]]` rule looks in a run.
const ACTION_RULE_WINDOW: i64 = 500;

pub struct Context<'a> {
    pub store: &'a dyn Store,
    pub record_key: &'a RecordKey,
    pub rules: &'a Rules,
    pub tenant: &'a str,
}

#[derive(Debug, thiserror::Error)]
pub enum EvaluationError {
    /// The payload is not an object with a claims array (→ 422).
    #[error("{0}")]
    Malformed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a reference resolved to, after the gates; owned, so the evaluator can borrow from it.
enum Found {
    Json(Value),
    NotJson,
    Missing,
    Tampered,
    Untrusted,
    Unavailable,
}

impl Found {
    fn as_evidence(&self) -> Evidence<'_> {
        match self {
            Found::Json(document) => Evidence::Json(document),
            Found::NotJson => Evidence::NotJson,
            Found::Missing => Evidence::Missing,
            Found::Tampered => Evidence::Tampered,
            Found::Untrusted => Evidence::Untrusted,
            Found::Unavailable => Evidence::Unavailable,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Reference {
    Record(String),
    Action(String),
}

impl Reference {
    fn of(record_id: Option<&str>, action: Option<&str>) -> Option<Reference> {
        match (record_id, action) {
            (Some(id), _) => Some(Reference::Record(id.to_string())),
            (None, Some(action)) => Some(Reference::Action(action.to_string())),
            (None, None) => None,
        }
    }
}

pub async fn run_evaluation(
    context: &Context<'_>,
    payload_json: &Value,
) -> Result<StoredEvaluation, EvaluationError> {
    let started = Instant::now();
    let created_at = Timestamp::now();
    let payload = Payload::parse(payload_json)
        .map_err(|malformed| EvaluationError::Malformed(malformed.0))?;
    let evidence = gather(context, &payload).await?;
    let unknown = Found::Missing;
    let evaluation = verify::evaluate(&payload, |reference: EvidenceRef<'_>| {
        Reference::of(reference.record_id, reference.action_name)
            .and_then(|key| evidence.get(&key))
            .unwrap_or(&unknown)
            .as_evidence()
    });
    let stored = StoredEvaluation {
        id: Uuid::now_v7(),
        run_id: payload.run_id.clone(),
        agent_id: payload.agent_id.clone(),
        outcome: evaluation.outcome,
        counts: evaluation.counts,
        per_claim: evaluation.per_claim,
        errors: evaluation.errors,
        created_at,
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
    };
    context
        .store
        .insert_evaluation(context.tenant, &stored, &storable_payload(payload_json))
        .await?;
    Ok(stored)
}

/// Every distinct reference of the payload, resolved once.
async fn gather(
    context: &Context<'_>,
    payload: &Payload,
) -> Result<HashMap<Reference, Found>, StoreError> {
    let mut references = Vec::new();
    for claim in &payload.claims {
        let action = claim.action_name.as_deref();
        match &claim.check {
            Ok(Check::FieldEntries(entries)) => {
                for entry in entries {
                    references.extend(Reference::of(
                        entry.record_id.as_deref().or(claim.record_id.as_deref()),
                        action,
                    ));
                }
            }
            Ok(_) => references.extend(Reference::of(claim.record_id.as_deref(), action)),
            Err(_) => {}
        }
    }
    let trust = match context.store.list_trusted_endpoints(context.tenant).await {
        Ok(endpoints) => Some(TrustList::new(context.rules, &endpoints)),
        Err(error) => {
            tracing::warn!(%error, "trusted endpoints unavailable");
            None
        }
    };
    let mut found = HashMap::new();
    for reference in references {
        if found.contains_key(&reference) {
            continue;
        }
        let record = match &reference {
            Reference::Record(id) => fetch_record(context, id).await,
            Reference::Action(action) => match &payload.run_id {
                Some(run) => fetch_action(context, run, action, payload.agent_id.as_deref()).await,
                None => Ok(None),
            },
        };
        let outcome = match (record, &trust) {
            (Err(error), _) => {
                tracing::warn!(%error, "evidence store unavailable");
                Found::Unavailable
            }
            (Ok(_), None) => Found::Unavailable,
            (Ok(None), _) => Found::Missing,
            (Ok(Some(sealed)), Some(trust)) => gate(context, &sealed, trust),
        };
        found.insert(reference, outcome);
    }
    Ok(found)
}

/// A record by id in the caller's tenant, waiting briefly for ids minted in the last few seconds.
async fn fetch_record(context: &Context<'_>, id: &str) -> Result<Option<SealedRecord>, StoreError> {
    let Ok(id) = Uuid::parse_str(id.trim()) else {
        return Ok(None);
    };
    let deadline = Instant::now() + FRESH_WAIT;
    loop {
        if let Some(record) = context.store.get_record(context.tenant, id).await? {
            return Ok(Some(record));
        }
        if !minted_recently(&id) || Instant::now() >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(FRESH_POLL).await;
    }
}

fn minted_recently(id: &Uuid) -> bool {
    let Some(timestamp) = id.get_timestamp() else {
        return false;
    };
    let (seconds, nanos) = timestamp.to_unix();
    let minted = Duration::new(seconds, nanos);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    now.checked_sub(minted).is_some_and(|age| age <= FRESH)
        || minted.checked_sub(now).is_some_and(|ahead| ahead <= FRESH)
}

/// The most recent record of the run tagged with the action, else the most recent one matching the
/// action's `[[actions]]` rule.
async fn fetch_action(
    context: &Context<'_>,
    run: &str,
    action: &str,
    agent: Option<&str>,
) -> Result<Option<SealedRecord>, StoreError> {
    if let Some(record) = context
        .store
        .latest_record_for_action(context.tenant, run, action, agent)
        .await?
    {
        return Ok(Some(record));
    }
    let rules: Vec<&EndpointPattern> = context
        .rules
        .actions
        .iter()
        .filter(|rule| rule.name == action)
        .map(|rule| &rule.pattern)
        .collect();
    if rules.is_empty() {
        return Ok(None);
    }
    let query = RecordQuery {
        run_id: Some(run.to_string()),
        agent_id: agent.map(String::from),
        limit: ACTION_RULE_WINDOW,
        ..Default::default()
    };
    let (recent, _) = context.store.list_records(context.tenant, &query).await?;
    match recent.iter().find(|summary| {
        rules
            .iter()
            .any(|rule| rule.matches(&summary.method, &summary.url))
    }) {
        Some(summary) => context.store.get_record(context.tenant, summary.id).await,
        None => Ok(None),
    }
}

/// Integrity, provenance, trust, then the body.
fn gate(context: &Context<'_>, sealed: &SealedRecord, trust: &TrustList) -> Found {
    if !context.record_key.verify(sealed).is_valid() {
        return Found::Tampered;
    }
    let record = &sealed.record;
    if context.rules.require_proxy_provenance && record.provenance == Provenance::Import {
        return Found::Missing;
    }
    if !trust.is_empty() && !trust.covers(&record.method, &record.url) {
        return Found::Untrusted;
    }
    match serde_json::from_slice(&record.response_body) {
        Ok(document) => Found::Json(document),
        Err(_) => Found::NotJson,
    }
}
