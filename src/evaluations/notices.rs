//! What a stored evaluation announces (our extension, docs/api.md §6.1): the webhooks `evaluation.completed`
//! (every evaluation) and `evaluation.caught` (one with a CAUGHT claim), and one live event — `evaluation.caught`
//! when a claim was caught, else `evaluation.completed` — so that a team can page on a hallucination.

use super::StoredEvaluation;
use crate::announce::{Announcement, LiveNotice};
use crate::verify::Outcome;
use crate::webhooks::OutboxEvent;
use serde_json::{json, Value};
use uuid::Uuid;

/// Caught claims carried in full; the rest are counted (`caught_total`).
const CAUGHT_SHOWN: usize = 20;

pub fn announcement(tenant: &str, evaluation: &StoredEvaluation) -> Announcement {
    let caught = evaluation.outcome == Outcome::Caught;
    let data = data(evaluation, true);
    let mut names = vec!["evaluation.completed"];
    if caught {
        names.push("evaluation.caught");
    }
    let outbox = names
        .into_iter()
        .map(|name| {
            let id = Uuid::now_v7();
            let mut body = json!({"id": id, "event": name, "timestamp": evaluation.created_at});
            merge(&mut body, &data);
            OutboxEvent {
                id,
                name: name.to_string(),
                packet_id: None,
                body: body.to_string(),
                time: evaluation.created_at,
            }
        })
        .collect();
    let kind = if caught {
        "evaluation.caught"
    } else {
        "evaluation.completed"
    };
    let envelope = |data: Value| {
        json!({"type": kind, "packet_id": null, "evaluation_id": evaluation.id, "data": data,
               "timestamp": evaluation.created_at})
        .to_string()
    };
    let live = LiveNotice {
        tenant: tenant.to_string(),
        kind: kind.to_string(),
        packet_id: None,
        status: String::new(),
        agents: evaluation.agent_id.iter().cloned().collect(),
        envelope: envelope(data),
        fallback: Some(envelope(self::data(evaluation, false))),
        details: Default::default(),
        at: evaluation.created_at,
    };
    Announcement {
        outbox,
        live: vec![live],
    }
}

/// The evaluation's summary, with its caught claims (action, path, claimed, actual, reason) when `claims`.
fn data(evaluation: &StoredEvaluation, claims: bool) -> Value {
    let caught: Vec<_> = evaluation
        .per_claim
        .iter()
        .filter(|claim| claim.result == Outcome::Caught)
        .collect();
    let mut data = json!({
        "evaluation_id": evaluation.id,
        "outcome": evaluation.outcome.as_str(),
        "counts": evaluation.counts,
        "run_id": evaluation.run_id,
        "agent_id": evaluation.agent_id,
        "caught_total": caught.len(),
    });
    if claims {
        data["caught"] = caught
            .iter()
            .take(CAUGHT_SHOWN)
            .map(|claim| {
                json!({"index": claim.index, "action_name": claim.action_name, "json_path": claim.json_path,
                       "claimed": claim.claimed, "actual": claim.actual, "reason": claim.reason})
            })
            .collect();
    }
    data
}

fn merge(target: &mut Value, extra: &Value) {
    if let (Some(target), Some(extra)) = (target.as_object_mut(), extra.as_object()) {
        target.extend(extra.clone());
    }
}
