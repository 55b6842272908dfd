//! Running an evaluation (docs/evaluator.md): resolve the evidence each claim names, pass every record through
//! the integrity, provenance and trust gates, hand the survivors to the pure evaluator, store the verdict.
//! This is the thin layer of I/O around `verify`; every decision it makes is recorded as a reason code.

mod evidence;
pub mod notices;
pub mod store;
mod stored;

pub use stored::{storable_payload, EvaluationQuery, StoredEvaluation};

use crate::announce::Announcement;
use crate::persistence::StoreError;
use crate::records::store::RecordStore;
use crate::records::RecordKey;
use crate::rules::store::TrustStore;
use crate::rules::Rules;
use crate::timestamp::Timestamp;
use crate::verify::{self, EvidenceRef, Limits, Payload};
use evidence::{evidence_bytes, gated, gather, Found, Reference};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use store::EvaluationStore;
use tokio::sync::Semaphore;
use uuid::Uuid;

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
    let small_payload = payload_json
        .get("claims")
        .and_then(Value::as_array)
        .is_some_and(|claims| claims.len() <= INLINE_CLAIMS)
        && !compiles_regexes(payload_json);
    let payload = if small_payload {
        Payload::parse_within(payload_json, &limits)
    } else {
        let json = payload_json.clone();
        off_runtime(move || Payload::parse_within(&json, &limits)).await?
    }
    .map_err(|malformed| EvaluationError::Malformed(malformed.0))?;
    let (fetched, trust) = gather(evaluator, &payload).await;
    let inline = small_payload
        && fetched.len() <= INLINE_CLAIMS
        && evidence_bytes(&fetched) <= INLINE_EVIDENCE;
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
