//! Verified handoffs (docs/api.md, decision 12): a packet carries its sender's claims; they are evaluated, with
//! the evidence, gates and budget of `POST /evaluations`, before the packet exists, and a verdict other than PASS
//! follows the sender's policy — `hold` for a human, `reject` outright, or `flag` and carry on.

use super::model::{HitlCheckpoint, Packet, PacketCreate};
use super::notices::Notice;
use crate::evaluations::NewEvaluation;
use crate::timestamp::Timestamp;
use crate::verify::{ClaimResult, Counts, Outcome};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

/// What a handoff whose verdict is not PASS does.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Wait for a human (`awaiting_human`, options "Accept anyway" / "Send back").
    #[default]
    Hold,
    /// Refuse the packet: 422 with the verdict; the evaluation is stored, the packet is not.
    Reject,
    /// Store the packet as usual, with the verdict.
    Flag,
}

impl Policy {
    /// The policy's wire name; `none` stands for no policy applied (a PASS).
    pub fn name(policy: Option<Policy>) -> &'static str {
        match policy {
            None => "none",
            Some(Policy::Hold) => "hold",
            Some(Policy::Reject) => "reject",
            Some(Policy::Flag) => "flag",
        }
    }
}

/// The options of a checkpoint that verification set.
pub const ACCEPT_ANYWAY: &str = "Accept anyway";
pub const SEND_BACK: &str = "Send back";

/// `verification` of a create, a chain or a batch item: the sender's claims (the evaluator's claim objects,
/// docs/evaluator.md) and what to do when they are not all PASS.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
pub struct VerificationRequest {
    /// The run whose records hold the evidence (claims by `action_name`).
    #[serde(default)]
    #[schema(max_length = 255)]
    pub run_id: Option<String>,
    #[serde(default)]
    pub agent_id: Option<String>,
    #[schema(value_type = Vec<Value>, min_items = 1, max_items = 1000)]
    pub claims: Vec<Value>,
    #[serde(default)]
    pub on_caught: Policy,
    #[serde(default)]
    pub on_error: Policy,
}

impl VerificationRequest {
    /// The payload `POST /evaluations` would take.
    pub fn payload(&self) -> Value {
        json!({"run_id": self.run_id, "agent_id": self.agent_id, "claims": self.claims})
    }
}

/// The verdict a packet carries: its stored evaluation, and the policy that was applied (none on PASS).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Verification {
    pub evaluation_id: Uuid,
    pub outcome: Outcome,
    pub counts: Counts,
    pub per_claim: Vec<ClaimResult>,
    /// `hold`, `reject` or `flag` when the outcome was CAUGHT or ERROR; null on PASS.
    pub policy: Option<Policy>,
    pub on_caught: Policy,
    pub on_error: Policy,
    /// The claims as sent (secret-looking keys removed), for re-verification and the reviewer.
    pub run_id: Option<String>,
    pub agent_id: Option<String>,
    #[schema(value_type = Vec<Value>)]
    pub claims: Vec<Value>,
}

impl Verification {
    pub fn of(request: &VerificationRequest, new: &NewEvaluation) -> Verification {
        let evaluation = &new.evaluation;
        let policy = match evaluation.outcome {
            Outcome::Pass => None,
            Outcome::Caught => Some(request.on_caught),
            Outcome::Error => Some(request.on_error),
        };
        Verification {
            evaluation_id: evaluation.id,
            outcome: evaluation.outcome,
            counts: evaluation.counts,
            per_claim: evaluation.per_claim.clone(),
            policy,
            on_caught: request.on_caught,
            on_error: request.on_error,
            run_id: request.run_id.clone(),
            agent_id: request.agent_id.clone(),
            claims: match new.payload.get("claims") {
                Some(Value::Array(claims)) => claims.clone(),
                _ => Vec::new(),
            },
        }
    }

    /// The request these claims came in, to evaluate them again.
    pub fn request(&self) -> VerificationRequest {
        VerificationRequest {
            run_id: self.run_id.clone(),
            agent_id: self.agent_id.clone(),
            claims: self.claims.clone(),
            on_caught: self.on_caught,
            on_error: self.on_error,
        }
    }

    /// The history event of the verdict: `verification_passed`, `verification_caught` or `verification_error`.
    pub fn event_type(&self) -> &'static str {
        match self.outcome {
            Outcome::Pass => "verification_passed",
            Outcome::Caught => "verification_caught",
            Outcome::Error => "verification_error",
        }
    }

    pub fn event_details(&self) -> Value {
        json!({"evaluation_id": self.evaluation_id, "outcome": self.outcome, "counts": self.counts,
               "policy": self.policy, "not_passed": self.not_passed()})
    }

    /// Each claim that did not pass, as a human reads it: index, action, result and reason, then the detail
    /// (path, claimed vs actual) or, without one, claimed vs actual at the path.
    fn not_passed(&self) -> Vec<String> {
        self.per_claim
            .iter()
            .filter(|claim| claim.result != Outcome::Pass)
            .map(|claim| {
                let action = claim.action_name.as_deref().unwrap_or("no action");
                let what = claim.detail.clone().unwrap_or_else(|| {
                    let actual = claim
                        .actual
                        .as_ref()
                        .map_or("nothing".to_string(), Value::to_string);
                    format!(
                        "claimed {}, record has {actual} at {}",
                        claim.claimed, claim.json_path
                    )
                });
                format!(
                    "claim {} ({action}) {} {}: {what}",
                    claim.index,
                    claim.result.as_str(),
                    claim.reason.as_str(),
                )
            })
            .collect()
    }

    /// Holds `request` for a human: its checkpoint (made or amended) lists each claim that did not pass and offers
    /// "Accept anyway" or "Send back". The sender's own reason and question stay.
    pub fn hold(&self, request: &mut PacketCreate) {
        let verdict = format!(
            "Verification {}: {}",
            self.outcome.as_str(),
            self.not_passed().join("; ")
        );
        let hitl = request.hitl.get_or_insert_with(|| HitlCheckpoint {
            required: true,
            reason: String::new(),
            question: Some("The sender's claims did not all verify. Accept the handoff anyway, or send it back?".into()),
            options: None,
            response: None,
            responded_at: None,
            responded_by: None,
            notes: None,
            timeout_seconds: None,
        });
        hitl.required = true;
        hitl.reason = if hitl.reason.is_empty() {
            verdict
        } else {
            format!("{verdict}\n\n{}", hitl.reason)
        };
        hitl.options = Some(vec![ACCEPT_ANYWAY.into(), SEND_BACK.into()]);
    }
}

/// `notice`, followed by `packet.verification_caught` when the packet's claims were CAUGHT (live and webhook).
pub fn announce_verdict(notice: Notice, packet: &Packet, now: Timestamp) -> Notice {
    match &packet.verification {
        Some(verification) if verification.outcome == Outcome::Caught => notice.followed_by(
            Notice::new("packet.verification_caught", packet, now)
                .with("verification", verification.event_details()),
        ),
        _ => notice,
    }
}
