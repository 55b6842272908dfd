//! Evidence for an evaluation: each reference of the payload (a record id, or a run's action) resolved once in
//! the caller's tenant within the request's evidence bytes, the tenant's trust list read meanwhile, and every
//! record passed through the integrity, provenance and trust gates before its body is parsed.

use super::Evaluator;
use crate::persistence::StoreError;
use crate::records::{Provenance, RecordKey, RecordQuery, SealedRecord};
use crate::rules::{EndpointPattern, Rules, TrustList};
use crate::verify::claim::Check;
use crate::verify::{Evidence, Payload};
use serde_json::Value;
use std::collections::HashMap;
use uuid::Uuid;

/// How far back an `[[actions]]` rule looks in a run.
const ACTION_RULE_WINDOW: i64 = 500;

/// What a reference resolved to, after the gates; owned, so the evaluator can borrow from it.
pub(super) enum Found {
    Json(Value),
    NotJson,
    Missing,
    Tampered,
    Untrusted,
    Unavailable,
    TooLarge,
}

impl Found {
    pub(super) fn as_evidence(&self) -> Evidence<'_> {
        match self {
            Found::Json(document) => Evidence::Json(document),
            Found::NotJson => Evidence::NotJson,
            Found::Missing => Evidence::Missing,
            Found::Tampered => Evidence::Tampered,
            Found::Untrusted => Evidence::Untrusted,
            Found::Unavailable => Evidence::Unavailable,
            Found::TooLarge => Evidence::TooLarge,
        }
    }
}

/// What the store returned for a reference, before the gates (CPU work: see `super::evaluate` for where it runs).
pub(super) enum Fetched {
    Record(Box<SealedRecord>),
    Missing,
    Unavailable,
    TooLarge,
}

/// Where a claim's evidence is: a record by id, or the latest record of the payload's run tagged with an action.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) enum Reference {
    Record(String),
    Action(String),
}

impl Reference {
    pub(super) fn of(record_id: Option<&str>, action: Option<&str>) -> Option<Reference> {
        match (record_id, action) {
            (Some(id), _) => Some(Reference::Record(id.to_string())),
            (None, Some(action)) => Some(Reference::Action(action.to_string())),
            (None, None) => None,
        }
    }
}

/// The evidence each reference found, through the gates.
pub(super) fn gated(
    record_key: &RecordKey,
    rules: &Rules,
    fetched: HashMap<Reference, Fetched>,
    trust: Option<&TrustList>,
) -> HashMap<Reference, Found> {
    fetched
        .into_iter()
        .map(|(reference, fetched)| {
            let found = match (fetched, trust) {
                (Fetched::Record(sealed), Some(trust)) => gate(record_key, rules, &sealed, trust),
                (Fetched::Record(_), None) | (Fetched::Unavailable, _) => Found::Unavailable,
                (Fetched::Missing, _) => Found::Missing,
                (Fetched::TooLarge, _) => Found::TooLarge,
            };
            (reference, found)
        })
        .collect()
}

/// Response bytes of the records fetched.
pub(super) fn evidence_bytes(fetched: &HashMap<Reference, Fetched>) -> u64 {
    fetched
        .values()
        .map(|fetched| match fetched {
            Fetched::Record(sealed) => sealed.record.response_body.len() as u64,
            _ => 0,
        })
        .sum()
}

/// Every distinct reference of the payload, fetched once, within the request's evidence bytes; and the
/// tenant's trust list (`None` when the store could not give it).
pub(super) async fn gather(
    evaluator: &Evaluator<'_>,
    payload: &Payload,
) -> (HashMap<Reference, Fetched>, Option<TrustList>) {
    let mut references = Vec::new();
    for claim in &payload.claims {
        let action = claim.action_name.as_deref();
        match &claim.check {
            Ok(Check::Entries { entries, .. }) => {
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
    // The trust list is read while the evidence is.
    let trust = async {
        match TrustList::of_tenant(evaluator.store, &evaluator.rules, evaluator.tenant).await {
            Ok(trust) => Some(trust),
            Err(error) => {
                tracing::warn!(%error, "trusted endpoints unavailable");
                None
            }
        }
    };
    let (trust, found) = tokio::join!(trust, fetch_all(evaluator, payload, references));
    (found, trust)
}

/// Each distinct reference fetched once, in order, within the request's evidence bytes.
async fn fetch_all(
    evaluator: &Evaluator<'_>,
    payload: &Payload,
    references: Vec<Reference>,
) -> HashMap<Reference, Fetched> {
    let mut found = HashMap::new();
    let mut evidence_bytes: u64 = 0;
    for reference in references {
        if found.contains_key(&reference) {
            continue;
        }
        let record = match &reference {
            Reference::Record(id) => fetch_record(evaluator, id).await,
            Reference::Action(action) => match &payload.run_id {
                Some(run) => {
                    fetch_action(evaluator, run, action, payload.agent_id.as_deref()).await
                }
                None => Ok(None),
            },
        };
        let fetched = match record {
            Err(error) => {
                tracing::warn!(%error, "evidence store unavailable");
                Fetched::Unavailable
            }
            Ok(None) => Fetched::Missing,
            Ok(Some(sealed)) => {
                let size = sealed.record.response_body.len() as u64;
                if evidence_bytes + size > evaluator.capacity.max_evidence {
                    Fetched::TooLarge
                } else {
                    evidence_bytes += size;
                    Fetched::Record(Box::new(sealed))
                }
            }
        };
        found.insert(reference, fetched);
    }
    found
}

/// A record by id in the caller's tenant, waiting briefly for ids minted in the last few seconds.
async fn fetch_record(
    evaluator: &Evaluator<'_>,
    id: &str,
) -> Result<Option<SealedRecord>, StoreError> {
    let Ok(id) = Uuid::parse_str(id.trim()) else {
        return Ok(None);
    };
    crate::records::fresh::get_record_fresh(evaluator.store, evaluator.tenant, id).await
}

/// The most recent record of the run tagged with the action, else the most recent one matching the
/// action's `[[actions]]` rule.
async fn fetch_action(
    evaluator: &Evaluator<'_>,
    run: &str,
    action: &str,
    agent: Option<&str>,
) -> Result<Option<SealedRecord>, StoreError> {
    if let Some(record) = evaluator
        .store
        .latest_record_for_action(evaluator.tenant, run, action, agent)
        .await?
    {
        return Ok(Some(record));
    }
    let rules: Vec<&EndpointPattern> = evaluator
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
        page: crate::paging::Page::first(ACTION_RULE_WINDOW),
        ..Default::default()
    };
    let (recent, _) = evaluator
        .store
        .list_records(evaluator.tenant, &query)
        .await?;
    match recent.iter().find(|summary| {
        rules
            .iter()
            .any(|rule| rule.matches(&summary.method, &summary.url))
    }) {
        Some(summary) => {
            evaluator
                .store
                .get_record(evaluator.tenant, summary.id)
                .await
        }
        None => Ok(None),
    }
}

/// Integrity, provenance, trust, then the body.
fn gate(record_key: &RecordKey, rules: &Rules, sealed: &SealedRecord, trust: &TrustList) -> Found {
    if !record_key.verify(sealed).is_valid() {
        return Found::Tampered;
    }
    let record = &sealed.record;
    if rules.require_proxy_provenance && record.provenance == Provenance::Import {
        return Found::Missing;
    }
    if !trust.admits(&record.method, &record.url) {
        return Found::Untrusted;
    }
    match serde_json::from_slice(&record.response_body) {
        Ok(document) => Found::Json(document),
        Err(_) => Found::NotJson,
    }
}
