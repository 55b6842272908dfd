//! Running an evaluation (docs/evaluator.md): resolve the evidence each claim names, pass every record through
//! the integrity, provenance and trust gates, hand the survivors to the pure evaluator, store the verdict.
//! This is the thin layer of I/O around `verify`; every decision it makes is recorded as a reason code.

pub mod notices;
pub mod store;
mod stored;

pub use stored::{storable_payload, EvaluationQuery, StoredEvaluation};

use crate::announce::Announcement;
use crate::persistence::StoreError;
use crate::records::store::RecordStore;
use crate::records::{Provenance, RecordKey, RecordQuery, SealedRecord};
use crate::rules::store::TrustStore;
use crate::rules::{EndpointPattern, Rules, TrustList};
use crate::timestamp::Timestamp;
use crate::verify::claim::Check;
use crate::verify::{self, Evidence, EvidenceRef, Limits, Payload};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use store::EvaluationStore;
use tokio::sync::Semaphore;
use uuid::Uuid;

/// How far back an `[[actions]]` rule looks in a run.
const ACTION_RULE_WINDOW: i64 = 500;

/// The stores an evaluation reads evidence from and writes its verdict to.
pub trait EvidenceStore: RecordStore + TrustStore + EvaluationStore {}

impl<T: RecordStore + TrustStore + EvaluationStore + ?Sized> EvidenceStore for T {}

/// What an evaluation runs with: the tenant's evidence in the store, the key that seals it, the rules, and the
/// server's evaluation capacity.
pub struct Evaluator<'a> {
    pub store: &'a dyn EvidenceStore,
    pub record_key: Arc<RecordKey>,
    pub rules: Arc<Rules>,
    pub tenant: &'a str,
    pub capacity: &'a Capacity,
}

/// What evaluations may use on this server: the budget of each request and how many run at once.
#[derive(Debug)]
pub struct Capacity {
    pub limits: Limits,
    /// Response bytes of evidence one request may load.
    pub max_evidence: u64,
    /// One permit per evaluation running: each holds a thread of the blocking pool and its evidence in memory.
    slots: Semaphore,
}

impl Capacity {
    pub fn new(limits: Limits, max_evidence: u64, concurrency: usize) -> Capacity {
        Capacity {
            limits,
            max_evidence,
            slots: Semaphore::new(concurrency.max(1)),
        }
    }
}

/// Response bytes of evidence one request may load unless configured otherwise: parsed JSON takes up to
/// about 25 times its text, so this keeps a request near 200 MB.
pub const DEFAULT_MAX_EVIDENCE: u64 = 8 << 20;

impl Default for Capacity {
    fn default() -> Self {
        Capacity::new(Limits::default(), DEFAULT_MAX_EVIDENCE, 1)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EvaluationError {
    /// The payload is not an object with a claims array (→ 422).
    #[error("{0}")]
    Malformed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The evaluation thread failed (a bug): logged, answered as an internal error.
    #[error("evaluation failed: {0}")]
    Internal(String),
}

/// What a reference resolved to, after the gates; owned, so the evaluator can borrow from it.
enum Found {
    Json(Value),
    NotJson,
    Missing,
    Tampered,
    Untrusted,
    Unavailable,
    TooLarge,
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
            Found::TooLarge => Evidence::TooLarge,
        }
    }
}

/// What the store returned for a reference, before the gates (which are CPU work, done off the runtime).
enum Fetched {
    Record(Box<SealedRecord>),
    Missing,
    Unavailable,
    TooLarge,
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

/// Runs CPU work on the blocking pool, so that no claim or record holds up the async workers.
async fn off_runtime<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, EvaluationError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| EvaluationError::Internal(error.to_string()))
}

/// Evaluates `payload_json`'s claims and stores the verdict.
pub async fn run_evaluation(
    evaluator: &Evaluator<'_>,
    payload_json: &Value,
) -> Result<StoredEvaluation, EvaluationError> {
    let new = evaluate(evaluator, payload_json, None).await?;
    evaluator
        .store
        .insert_evaluation(evaluator.tenant, &new)
        .await?;
    Ok(new.evaluation)
}

/// An evaluation decided and not yet stored: the verdict, the payload as kept, and what storing it announces.
/// A verified packet's is stored in the packet's own write (`PacketStore::insert_packet`).
#[derive(Clone, Debug)]
pub struct NewEvaluation {
    pub evaluation: StoredEvaluation,
    /// The payload as stored ([`storable_payload`]: no secrets).
    pub payload: Value,
    pub announcement: Announcement,
}

/// Claims of at most this many, without regular expressions to compile, over at most this many records and
/// bytes of evidence, are parsed, gated and evaluated on the request's own task within [`INLINE_STEPS`]: the
/// hand-offs to the blocking pool would cost more than the work. Anything larger, and an evaluation that needs
/// more steps, runs on the blocking pool with the whole budget.
const INLINE_CLAIMS: usize = 16;
const INLINE_EVIDENCE: u64 = 64 << 10;
/// Steps an evaluation may spend on the request's task (well under a millisecond); one that runs out is
/// evaluated again from the start on the blocking pool, so its verdict is the one the whole budget gives.
const INLINE_STEPS: u64 = 20_000;

/// Evaluates `payload_json`'s claims without storing the verdict (`packet_id` names the packet they came with).
pub async fn evaluate(
    evaluator: &Evaluator<'_>,
    payload_json: &Value,
    packet_id: Option<Uuid>,
) -> Result<NewEvaluation, EvaluationError> {
    let _slot = evaluator
        .capacity
        .slots
        .acquire()
        .await
        .map_err(|error| EvaluationError::Internal(error.to_string()))?;
    let started = Instant::now();
    let created_at = Timestamp::now();
    let limits = evaluator.capacity.limits;
    let few_claims = payload_json
        .get("claims")
        .and_then(Value::as_array)
        .is_some_and(|claims| claims.len() <= INLINE_CLAIMS)
        && !compiles_regexes(payload_json);
    let payload = if few_claims {
        Payload::parse_within(payload_json, &limits)
    } else {
        let json = payload_json.clone();
        off_runtime(move || Payload::parse_within(&json, &limits)).await?
    }
    .map_err(|malformed| EvaluationError::Malformed(malformed.0))?;
    let (fetched, trust) = gather(evaluator, &payload).await;
    let inline =
        few_claims && fetched.len() <= INLINE_CLAIMS && evidence_bytes(&fetched) <= INLINE_EVIDENCE;
    let (record_key, rules) = (evaluator.record_key.clone(), evaluator.rules.clone());
    let gate_all = move || gated(&record_key, &rules, fetched, trust.as_ref());
    let (payload, evaluation) = if inline {
        let evidence = gate_all();
        match judge_inline(&payload, &evidence, &limits) {
            Some(verdict) => (payload, verdict),
            None => {
                off_runtime(move || {
                    let verdict = judge(&payload, &evidence, &limits);
                    (payload, verdict)
                })
                .await?
            }
        }
    } else {
        off_runtime(move || {
            let evidence = gate_all();
            let verdict = judge(&payload, &evidence, &limits);
            (payload, verdict)
        })
        .await?
    };
    let evaluation = StoredEvaluation {
        id: Uuid::now_v7(),
        run_id: payload.run_id.clone(),
        agent_id: payload.agent_id.clone(),
        outcome: evaluation.outcome,
        counts: evaluation.counts,
        per_claim: evaluation.per_claim,
        errors: evaluation.errors,
        created_at,
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        packet_id,
    };
    Ok(NewEvaluation {
        announcement: notices::announcement(evaluator.tenant, &evaluation),
        payload: storable_payload(payload_json),
        evaluation,
    })
}

/// The evidence each reference found, through the gates.
fn gated(
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

/// The pure evaluator's verdict on `payload` over the gated evidence.
fn judge(
    payload: &Payload,
    evidence: &HashMap<Reference, Found>,
    limits: &Limits,
) -> verify::Evaluation {
    let unknown = Found::Missing;
    verify::evaluate_within(
        payload,
        |reference: EvidenceRef<'_>| {
            Reference::of(reference.record_id, reference.action_name)
                .and_then(|key| evidence.get(&key))
                .unwrap_or(&unknown)
                .as_evidence()
        },
        limits,
    )
}

/// [`judge`] within [`INLINE_STEPS`]; None when that ran out before the whole budget would have.
fn judge_inline(
    payload: &Payload,
    evidence: &HashMap<Reference, Found>,
    limits: &Limits,
) -> Option<verify::Evaluation> {
    let within = Limits {
        steps: INLINE_STEPS.min(limits.steps),
        ..*limits
    };
    Some(judge(payload, evidence, &within))
        .filter(|verdict| within.steps == limits.steps || !ran_out(verdict))
}

/// Whether any text of the payload calls `match(` or `search(` (RFC 9535 allows no space before the
/// parenthesis), whose regular expressions take a compilation each: conservative, a member named so counts too.
fn compiles_regexes(value: &Value) -> bool {
    match value {
        Value::String(text) => text.contains("match(") || text.contains("search("),
        Value::Array(items) => items.iter().any(compiles_regexes),
        Value::Object(members) => members.values().any(compiles_regexes),
        _ => false,
    }
}

/// Whether a claim ran out of the budget (its verdict might differ under a larger one).
fn ran_out(evaluation: &verify::Evaluation) -> bool {
    evaluation
        .per_claim
        .iter()
        .any(|claim| claim.reason == verify::Reason::ResourceLimit)
}

/// Response bytes of the records fetched.
fn evidence_bytes(fetched: &HashMap<Reference, Fetched>) -> u64 {
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
async fn gather(
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

#[cfg(test)]
mod tests {
    use super::compiles_regexes;
    use serde_json::json;

    #[test]
    fn regular_expressions_are_found_in_any_claim_text() {
        let plain =
            json!({"claims": [{"json_path": "$.items[?@.sku == 'A']", "claimed_value": "search"}]});
        assert!(!compiles_regexes(&plain));
        let nested = json!({"claims": [{"entries": [{"json_path": "$[?search(@.name, 'a+')]"}]}]});
        assert!(compiles_regexes(&nested));
        assert!(compiles_regexes(&json!(["$[?match(@, 'x')]"])));
    }
}
