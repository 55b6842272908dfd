//! The packet state machine (docs/api.md §3 and docs/api.md decision 4): which transitions are legal and what each trigger
//! does to a packet. Pure functions from (packet, request, now) to (new packet, history event) or a refusal;
//! the store applies the result with a conditional update.

use super::history::{actor_for_agent, NewEvent};
use super::model::{
    Claimant, HitlCheckpoint, HumanResponse, Packet, PacketUpdate, Status, TargetAgent,
};
use super::notices::Notice;
use super::verification::Verification;
use crate::announce::Announcement;
use crate::timestamp::Timestamp;
use serde_json::json;
use uuid::Uuid;

/// Why a trigger was refused. Each maps to one status code and message (docs/api.md §3.3).
#[derive(Clone, Debug, PartialEq)]
pub enum Refusal {
    /// 400: the table of docs/api.md §3.1 forbids it.
    IllegalTransition { from: Status, to: Status },
    /// 409 with an object `detail`.
    AlreadyClaimed {
        packet_id: Uuid,
        claimed_by: TargetAgent,
    },
    /// 410.
    Expired { packet_id: Uuid },
    /// 409: docs/api.md decision 4, a human checkpoint cannot be skipped.
    AwaitingHuman { packet_id: Uuid },
    /// 409.
    NotAwaitingHuman { status: Status },
    /// 400.
    NoHitlCheckpoint,
    /// 400: re-verification of a packet created without claims.
    NoClaims,
    /// 409.
    AlreadyExpired { packet_id: Uuid },
    /// 422: a human's answer is recorded by `respond` alone, so that an agent cannot forge it.
    AnswerOnlyByRespond,
    /// 422: a required checkpoint without a reason.
    HitlWithoutReason,
}

impl Status {
    /// Legal targets, in the order the reference lists them in its 400 message.
    pub fn allowed_targets(self) -> &'static [Status] {
        use Status::*;
        match self {
            Created => &[Claimed, AwaitingHuman, Failed, Expired],
            // Decision 13: an agent may complete what it claimed without marking it in progress first.
            Claimed => &[InProgress, Completed, AwaitingHuman, Failed, Expired],
            InProgress => &[Completed, AwaitingHuman, Failed, Expired],
            AwaitingHuman => &[Claimed, InProgress, Failed, Expired],
            Completed | Failed => &[Expired],
            Expired => &[],
        }
    }

    pub fn can_become(self, to: Status) -> bool {
        self.allowed_targets().contains(&to)
    }

    /// Statuses the expiry task may move to `expired`.
    pub fn is_live(self) -> bool {
        !matches!(self, Status::Completed | Status::Expired)
    }
}

impl Refusal {
    pub fn message(&self) -> String {
        match self {
            Refusal::IllegalTransition { from, to } => {
                let allowed: Vec<String> = from
                    .allowed_targets()
                    .iter()
                    .map(|status| format!("'{}'", status.as_str()))
                    .collect();
                format!(
                    "Cannot transition from '{}' to '{}'. Allowed transitions from '{}': [{}]",
                    from.as_str(),
                    to.as_str(),
                    from.as_str(),
                    allowed.join(", ")
                )
            }
            Refusal::AlreadyClaimed { packet_id, .. } => {
                format!("Packet {packet_id} is already claimed")
            }
            Refusal::Expired { packet_id } => format!("Packet {packet_id} has expired"),
            Refusal::AwaitingHuman { packet_id } => {
                format!("Packet {packet_id} is awaiting a human response")
            }
            Refusal::NotAwaitingHuman { status } => format!(
                "Packet is in '{}' status, not 'awaiting_human'. Cannot respond.",
                status.as_str()
            ),
            Refusal::NoHitlCheckpoint => "Packet has no HITL checkpoint".to_string(),
            Refusal::NoClaims => "Packet has no claims to verify".to_string(),
            Refusal::AlreadyExpired { packet_id } => {
                format!("Packet {packet_id} is already expired")
            }
            Refusal::AnswerOnlyByRespond => "hitl.response, hitl.responded_by and hitl.responded_at are set only by POST /packets/{id}/respond".to_string(),
            Refusal::HitlWithoutReason => {
                "Value error, HITL checkpoint with required=true must include a reason".to_string()
            }
        }
    }
}

/// A decided change: the packet to store, the history events to append with it, and what it tells live
/// subscribers and webhooks.
#[derive(Clone, Debug)]
pub struct Change {
    pub packet: Packet,
    pub events: Vec<NewEvent>,
    pub notice: Notice,
}

impl Change {
    /// What this change announces when it is written in `tenant`.
    pub fn announcement(&self, tenant: &str) -> Announcement {
        self.notice.announcement(tenant, &self.packet)
    }
}

/// The status a new packet starts in (docs/api.md §3.2).
pub fn initial_status(packet_hitl_required: bool) -> Status {
    if packet_hitl_required {
        Status::AwaitingHuman
    } else {
        Status::Created
    }
}

pub fn claim(current: &Packet, claimant: &Claimant, now: Timestamp) -> Result<Change, Refusal> {
    match current.status {
        Status::Created => {}
        Status::Claimed => {
            return Err(Refusal::AlreadyClaimed {
                packet_id: current.id,
                claimed_by: current.metadata.target_agent.clone(),
            })
        }
        Status::Expired => {
            return Err(Refusal::Expired {
                packet_id: current.id,
            })
        }
        Status::AwaitingHuman => {
            return Err(Refusal::AwaitingHuman {
                packet_id: current.id,
            })
        }
        from => {
            return Err(Refusal::IllegalTransition {
                from,
                to: Status::Claimed,
            })
        }
    }
    let mut packet = current.clone();
    packet.status = Status::Claimed;
    packet.metadata.claimed_at = Some(now);
    packet.metadata.target_agent = TargetAgent {
        id: claimant.agent_id.clone(),
        name: claimant.agent_name.clone(),
        framework: claimant.framework.clone(),
    };
    packet.updated_at = now;
    let event = NewEvent::new(
        packet.id,
        "claimed",
        actor_for_agent(&claimant.agent_id),
        json!({"agent_name": claimant.agent_name, "framework": claimant.framework}),
        now,
    );
    Ok(Change {
        notice: Notice::new("packet.claimed", &packet, now),
        packet,
        events: vec![event],
    })
}

pub fn respond(
    current: &Packet,
    answer: &HumanResponse,
    now: Timestamp,
) -> Result<Change, Refusal> {
    if current.status != Status::AwaitingHuman {
        return Err(Refusal::NotAwaitingHuman {
            status: current.status,
        });
    }
    let mut packet = current.clone();
    let hitl = packet.hitl.as_mut().ok_or(Refusal::NoHitlCheckpoint)?;
    hitl.response = Some(answer.response.clone());
    hitl.responded_at = Some(now);
    hitl.responded_by = Some(answer.responded_by.clone());
    let notes = answer.notes.clone().filter(|notes| !notes.is_empty());
    if notes.is_some() {
        hitl.notes = notes.clone();
    }
    // A checkpoint that verification set (decision 12): "Send back" fails the handoff, with the verdict already
    // in its history; any other answer accepts it.
    let sent_back = answer.response == super::verification::SEND_BACK
        && packet.verification.as_ref().is_some_and(|verification| {
            verification.policy == Some(super::verification::Policy::Hold)
        });
    packet.status = if sent_back {
        Status::Failed
    } else {
        packet.metadata.claimed_at = Some(now);
        Status::Claimed
    };
    packet.updated_at = now;
    let event = NewEvent::new(
        packet.id,
        "hitl_responded",
        format!("human:{}", answer.responded_by),
        json!({"response": answer.response, "notes": notes, "transition_to": packet.status}),
        now,
    );
    Ok(Change {
        notice: Notice::new("hitl.response_ready", &packet, now)
            .with("hitl_response", json!(answer.response)),
        packet,
        events: vec![event],
    })
}

/// A re-verification's verdict (docs/api.md decision 12): the packet carries it (the policy applied at creation
/// stays, and so does the status), and the history gets it beside the first.
pub fn reverified(
    current: &Packet,
    renewed: &Verification,
    now: Timestamp,
) -> Result<Change, Refusal> {
    let previous = current.verification.as_ref().ok_or(Refusal::NoClaims)?;
    let mut packet = current.clone();
    let mut verdict = renewed.clone();
    verdict.policy = previous.policy;
    let mut details = verdict.event_details();
    details["reverified"] = json!(true);
    details["previous_evaluation_id"] = json!(previous.evaluation_id);
    details["previous_outcome"] = json!(previous.outcome);
    packet.verification = Some(verdict);
    packet.updated_at = now;
    let event = NewEvent::new(
        packet.id,
        renewed.event_type(),
        "system:verification".to_string(),
        details,
        now,
    );
    Ok(Change {
        notice: super::verification::announce_verdict(
            Notice::new("packet.updated", &packet, now),
            &packet,
            now,
        ),
        packet,
        events: vec![event],
    })
}

/// PATCH (docs/api.md §2.10): status through the table, decisions upserted by id, the rest replaced wholesale.
pub fn update(current: &Packet, update: &PacketUpdate, now: Timestamp) -> Result<Change, Refusal> {
    let mut packet = current.clone();
    let mut events = Vec::new();
    if let Some(to) = update.status.filter(|to| *to != current.status) {
        let from = current.status;
        if from == Status::AwaitingHuman && matches!(to, Status::Claimed | Status::InProgress) {
            return Err(Refusal::AwaitingHuman {
                packet_id: current.id,
            });
        }
        if !from.can_become(to) {
            return Err(Refusal::IllegalTransition { from, to });
        }
        packet.status = to;
        if to == Status::Completed {
            packet.metadata.completed_at = Some(now);
        }
        let target = &current.metadata.target_agent.id;
        let actor = if target.is_empty() {
            "system".to_string()
        } else {
            actor_for_agent(target)
        };
        events.push(NewEvent::new(
            packet.id,
            to.as_str(),
            actor,
            json!({"from_status": from.as_str(), "to_status": to.as_str()}),
            now,
        ));
    }
    if let Some(context) = &update.context {
        packet.context = context.clone();
    }
    if let Some(decisions) = &update.decisions {
        for decision in decisions {
            match packet
                .decisions
                .iter_mut()
                .find(|existing| existing.id == decision.id)
            {
                Some(existing) => *existing = decision.clone(),
                None => packet.decisions.push(decision.clone()),
            }
        }
    }
    if let Some(actions) = &update.actions {
        packet.actions = actions.clone();
    }
    if let Some(dependencies) = &update.dependencies {
        packet.dependencies = dependencies.clone();
    }
    if let Some(hitl) = &update.hitl {
        if hitl.lacks_reason() {
            return Err(Refusal::HitlWithoutReason);
        }
        // The answer is left out (and kept as stored) or repeated unchanged; anything else would forge it.
        let stored = current.hitl.as_ref();
        let mut changed = hitl.clone();
        if !hitl.is_answered() {
            if let Some(stored) = stored {
                changed.response = stored.response.clone();
                changed.responded_by = stored.responded_by.clone();
                changed.responded_at = stored.responded_at;
            }
        } else if Some(hitl.answer()) != stored.map(HitlCheckpoint::answer) {
            return Err(Refusal::AnswerOnlyByRespond);
        }
        packet.hitl = Some(changed);
    }
    packet.updated_at = now;
    // Named after the status sent, even unchanged (docs/api.md §7.3).
    let kind = match update.status {
        Some(status) => format!("packet.{}", status.as_str()),
        None => "packet.updated".to_string(),
    };
    Ok(Change {
        notice: Notice::new(kind, &packet, now),
        packet,
        events,
    })
}

/// Batch complete (docs/api.md §3.2, §8.2, decision 13): from `claimed` or `in_progress` only — a packet already
/// `completed` is refused like any other status — with the actor `system:batch_complete`.
pub fn complete_in_batch(current: &Packet, now: Timestamp) -> Result<Change, Refusal> {
    if !matches!(current.status, Status::Claimed | Status::InProgress) {
        return Err(Refusal::IllegalTransition {
            from: current.status,
            to: Status::Completed,
        });
    }
    let mut packet = current.clone();
    packet.status = Status::Completed;
    packet.metadata.completed_at = Some(now);
    packet.updated_at = now;
    let event = NewEvent::new(
        packet.id,
        "completed",
        "system:batch_complete".to_string(),
        json!({"from_status": current.status.as_str(), "to_status": "completed"}),
        now,
    );
    Ok(Change {
        notice: Notice::new("packet.completed", &packet, now),
        packet,
        events: vec![event],
    })
}

/// Soft delete (DELETE) and TTL expiry: any live or finished packet becomes `expired`.
pub fn expire(
    current: &Packet,
    actor: &str,
    reason: &str,
    now: Timestamp,
) -> Result<Change, Refusal> {
    if current.status == Status::Expired {
        return Err(Refusal::AlreadyExpired {
            packet_id: current.id,
        });
    }
    let mut packet = current.clone();
    packet.status = Status::Expired;
    packet.updated_at = now;
    let event = NewEvent::new(
        packet.id,
        "expired",
        actor.to_string(),
        json!({"previous_status": current.status.as_str(), "reason": reason}),
        now,
    );
    Ok(Change {
        notice: Notice::new("packet.expired", &packet, now),
        packet,
        events: vec![event],
    })
}

/// When a waiting packet expires for want of an answer (docs/api.md decision 7): `hitl.timeout_seconds` after it began
/// waiting on the checkpoint it carries. The deadline holds while the packet keeps waiting on the same
/// checkpoint; replacing the checkpoint or entering `awaiting_human` again starts it anew.
pub fn hitl_deadline(
    before: Option<(&Packet, Option<Timestamp>)>,
    after: &Packet,
    now: Timestamp,
) -> Option<Timestamp> {
    if after.status != Status::AwaitingHuman {
        return None;
    }
    let timeout = after
        .hitl
        .as_ref()?
        .timeout_seconds
        .filter(|seconds| *seconds > 0)?;
    if let Some((previous, deadline)) = before {
        if previous.status == Status::AwaitingHuman && previous.hitl == after.hitl {
            return deadline;
        }
    }
    now.plus_seconds(timeout)
}

/// Why the expiry task expires a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpiryReason {
    TtlExceeded,
    HitlTimeout,
}

impl ExpiryReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ExpiryReason::TtlExceeded => "ttl_exceeded",
            ExpiryReason::HitlTimeout => "hitl_timeout",
        }
    }
}

/// Whether `packet` is due to expire at `now`: live and older than the TTL cutoff, or waiting past its
/// checkpoint's deadline. Decided on the packet as it is when the update is made, not when it was listed.
pub fn expiry_due(
    packet: &Packet,
    hitl_deadline: Option<Timestamp>,
    ttl_cutoff: Timestamp,
    now: Timestamp,
) -> Option<ExpiryReason> {
    if !packet.status.is_live() {
        return None;
    }
    if packet.status == Status::AwaitingHuman
        && hitl_deadline.is_some_and(|deadline| deadline <= now)
    {
        return Some(ExpiryReason::HitlTimeout);
    }
    if packet.created_at < ttl_cutoff {
        return Some(ExpiryReason::TtlExceeded);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packets::model::{Context, HitlCheckpoint, Metadata, SourceAgent};

    fn packet(status: Status) -> Packet {
        let at = Timestamp::parse("2026-11-21T09:00:00Z").expect("time");
        Packet {
            id: Uuid::new_v4(),
            version: "1.0.0".into(),
            parent_packet_id: None,
            metadata: Metadata {
                source_agent: SourceAgent {
                    id: "a".into(),
                    name: "A".into(),
                    framework: None,
                    version: None,
                },
                target_agent: TargetAgent {
                    id: "b".into(),
                    name: "B".into(),
                    framework: None,
                },
                created_at: at,
                claimed_at: None,
                completed_at: None,
                priority: Default::default(),
                tags: vec![],
            },
            context: Context {
                summary: "s".into(),
                conversation_state: vec![],
                artifacts: vec![],
                custom: Default::default(),
            },
            decisions: vec![],
            actions: Default::default(),
            dependencies: vec![],
            hitl: None,
            status,
            created_at: at,
            updated_at: at,
            verification: None,
        }
    }

    fn waiting(timeout: Option<i64>) -> Packet {
        let mut packet = packet(Status::AwaitingHuman);
        packet.hitl = Some(HitlCheckpoint {
            required: true,
            reason: "r".into(),
            question: None,
            options: None,
            response: None,
            responded_at: None,
            responded_by: None,
            notes: None,
            timeout_seconds: timeout,
        });
        packet
    }

    #[test]
    fn a_patch_cannot_write_the_humans_answer() {
        let current = waiting(Some(60));
        let mut forged = current.hitl.clone().expect("checkpoint");
        forged.response = Some("approve".into());
        forged.responded_by = Some("ceo".into());
        let update = PacketUpdate {
            hitl: Some(forged),
            ..Default::default()
        };
        let now = Timestamp::parse("2026-11-21T09:05:00Z").expect("time");
        assert_eq!(
            update_refusal(&current, &update, now),
            Some(Refusal::AnswerOnlyByRespond)
        );
        // The checkpoint sent back unchanged, or with a new question, is fine.
        let mut reworded = current.hitl.clone().expect("checkpoint");
        reworded.question = Some("Ship it?".into());
        let update = PacketUpdate {
            hitl: Some(reworded),
            ..Default::default()
        };
        assert_eq!(update_refusal(&current, &update, now), None);
    }

    fn update_refusal(current: &Packet, patch: &PacketUpdate, now: Timestamp) -> Option<Refusal> {
        update(current, patch, now).err()
    }

    fn patch_to(status: Status) -> PacketUpdate {
        PacketUpdate {
            status: Some(status),
            ..Default::default()
        }
    }

    #[test]
    fn transition_table_matches_the_spec() {
        use Status::*;
        let legal = [
            (Created, &[Claimed, AwaitingHuman, Failed, Expired][..]),
            (
                Claimed,
                &[InProgress, Completed, AwaitingHuman, Failed, Expired],
            ),
            (InProgress, &[AwaitingHuman, Completed, Failed, Expired]),
            (AwaitingHuman, &[Claimed, InProgress, Failed, Expired]),
            (Completed, &[Expired]),
            (Failed, &[Expired]),
            (Expired, &[]),
        ];
        for (from, targets) in legal {
            for to in Status::ALL {
                assert_eq!(
                    from.can_become(to),
                    targets.contains(&to),
                    "{from:?} -> {to:?}"
                );
            }
        }
    }

    #[test]
    fn illegal_transition_message_lists_allowed_targets_in_reference_order() {
        let refusal = update(
            &packet(Status::Claimed),
            &patch_to(Status::Created),
            Timestamp::now(),
        )
        .expect_err("claimed -> created is illegal");
        assert_eq!(
            refusal.message(),
            "Cannot transition from 'claimed' to 'created'. Allowed transitions from 'claimed': \
             ['in_progress', 'completed', 'awaiting_human', 'failed', 'expired']"
        );
        let refusal = Refusal::IllegalTransition {
            from: Status::Expired,
            to: Status::Claimed,
        };
        assert!(refusal
            .message()
            .ends_with("Allowed transitions from 'expired': []"));
    }

    #[test]
    fn claim_outcome_depends_on_status() {
        let claimant = Claimant {
            agent_id: "c".into(),
            agent_name: "C".into(),
            framework: None,
        };
        let now = Timestamp::now();
        let won = claim(&packet(Status::Created), &claimant, now).expect("claim from created");
        assert_eq!(won.packet.status, Status::Claimed);
        assert_eq!(won.packet.metadata.target_agent.id, "c");
        assert_eq!(won.packet.metadata.claimed_at, Some(now));
        assert_eq!(won.events[0].event_type, "claimed");
        assert_eq!(won.events[0].actor, "agent:c");

        type Expect = fn(&Refusal) -> bool;
        let cases: [(Status, Expect); 6] = [
            (Status::Claimed, |r| {
                matches!(r, Refusal::AlreadyClaimed { .. })
            }),
            (Status::Expired, |r| matches!(r, Refusal::Expired { .. })),
            (Status::AwaitingHuman, |r| {
                matches!(r, Refusal::AwaitingHuman { .. })
            }),
            (Status::InProgress, |r| {
                matches!(r, Refusal::IllegalTransition { .. })
            }),
            (Status::Completed, |r| {
                matches!(r, Refusal::IllegalTransition { .. })
            }),
            (Status::Failed, |r| {
                matches!(r, Refusal::IllegalTransition { .. })
            }),
        ];
        for (status, expected) in cases {
            let refusal = claim(&packet(status), &claimant, now).expect_err("refused");
            assert!(expected(&refusal), "{status:?} gave {refusal:?}");
        }
    }

    #[test]
    fn human_checkpoint_cannot_be_skipped_by_patch() {
        for to in [Status::Claimed, Status::InProgress] {
            let refusal = update(
                &packet(Status::AwaitingHuman),
                &patch_to(to),
                Timestamp::now(),
            )
            .expect_err("skip refused");
            assert!(matches!(refusal, Refusal::AwaitingHuman { .. }), "{to:?}");
        }
        for to in [Status::Failed, Status::Expired] {
            assert!(update(
                &packet(Status::AwaitingHuman),
                &patch_to(to),
                Timestamp::now()
            )
            .is_ok());
        }
    }

    #[test]
    fn same_status_patch_is_a_silent_no_op_for_status() {
        let change = update(
            &packet(Status::Claimed),
            &patch_to(Status::Claimed),
            Timestamp::now(),
        )
        .expect("no-op");
        assert_eq!(change.packet.status, Status::Claimed);
        assert!(change.events.is_empty());
    }

    #[test]
    fn completing_stamps_completed_at_and_writes_history() {
        // From in progress, and (decision 13) straight from claimed.
        for from in [Status::InProgress, Status::Claimed] {
            let now = Timestamp::now();
            let change =
                update(&packet(from), &patch_to(Status::Completed), now).expect("complete");
            assert_eq!(change.packet.status, Status::Completed);
            assert_eq!(change.packet.metadata.completed_at, Some(now));
            assert_eq!(change.events[0].event_type, "completed");
            assert_eq!(change.events[0].details["from_status"], from.as_str());
        }
    }

    #[test]
    fn respond_fills_the_checkpoint_and_moves_to_claimed() {
        let waiting = waiting(None);
        let answer = HumanResponse {
            response: "yes".into(),
            responded_by: "ann".into(),
            notes: Some(String::new()),
        };
        let now = Timestamp::now();
        let change = respond(&waiting, &answer, now).expect("respond");
        let hitl = change.packet.hitl.expect("hitl kept");
        assert_eq!(hitl.response.as_deref(), Some("yes"));
        assert_eq!(hitl.responded_by.as_deref(), Some("ann"));
        assert_eq!(hitl.responded_at, Some(now));
        assert_eq!(hitl.notes, None, "empty notes are not stored");
        assert_eq!(change.packet.status, Status::Claimed);
        assert_eq!(change.events[0].actor, "human:ann");

        let not_waiting =
            respond(&packet(Status::Created), &answer, now).expect_err("not awaiting");
        assert!(matches!(
            not_waiting,
            Refusal::NotAwaitingHuman {
                status: Status::Created
            }
        ));
        let no_hitl = respond(&packet(Status::AwaitingHuman), &answer, now).expect_err("no hitl");
        assert_eq!(no_hitl, Refusal::NoHitlCheckpoint);
    }

    #[test]
    fn decisions_upsert_by_id_and_actions_replace() {
        use crate::packets::model::{Actions, Decision};
        let decision = |id: &str, text: &str| Decision {
            id: id.into(),
            decision: text.into(),
            rationale: String::new(),
            alternatives: vec![],
            decided_by: None,
            timestamp: None,
        };
        let mut current = packet(Status::Created);
        current.decisions = vec![decision("d1", "old"), decision("d2", "keep")];
        let patch = PacketUpdate {
            decisions: Some(vec![decision("d3", "new"), decision("d1", "replaced")]),
            actions: Some(Actions::default()),
            ..Default::default()
        };
        let change = update(&current, &patch, Timestamp::now()).expect("patch");
        let texts: Vec<&str> = change
            .packet
            .decisions
            .iter()
            .map(|d| d.decision.as_str())
            .collect();
        assert_eq!(texts, ["replaced", "keep", "new"]);
    }

    #[test]
    fn hitl_deadline_starts_when_waiting_begins_and_holds_while_it_lasts() {
        let now = Timestamp::parse("2026-11-21T10:00:00Z").expect("time");
        let later = Timestamp::parse("2026-11-21T10:05:00Z").expect("time");
        let due = |at: Timestamp, seconds| at.plus_seconds(seconds);
        assert_eq!(
            hitl_deadline(None, &waiting(Some(60)), now),
            due(now, 60),
            "born waiting"
        );
        assert_eq!(
            hitl_deadline(None, &waiting(None), now),
            None,
            "no timeout, no deadline"
        );
        assert_eq!(
            hitl_deadline(None, &waiting(Some(0)), now),
            None,
            "zero means none"
        );
        let kept = hitl_deadline(
            Some((&waiting(Some(60)), due(now, 60))),
            &waiting(Some(60)),
            later,
        );
        assert_eq!(kept, due(now, 60), "same checkpoint keeps its deadline");
        let replaced = hitl_deadline(
            Some((&waiting(Some(60)), due(now, 60))),
            &waiting(Some(30)),
            later,
        );
        assert_eq!(
            replaced,
            due(later, 30),
            "a new checkpoint restarts the clock"
        );
        let mut entering = waiting(Some(60));
        entering.status = Status::Claimed;
        assert_eq!(
            hitl_deadline(Some((&entering, None)), &waiting(Some(60)), later),
            due(later, 60)
        );
        let mut answered = waiting(Some(60));
        answered.status = Status::Claimed;
        assert_eq!(
            hitl_deadline(Some((&waiting(Some(60)), due(now, 60))), &answered, later),
            None
        );
    }

    #[test]
    fn expiry_is_due_only_for_live_packets_past_a_limit() {
        let now = Timestamp::parse("2026-11-21T10:00:00Z").expect("time");
        let cutoff_before = Timestamp::parse("2026-11-21T08:00:00Z").expect("time");
        let cutoff_after = Timestamp::parse("2026-11-21T09:30:00Z").expect("time");
        let past = now.plus_seconds(-1);
        let future = now.plus_seconds(1);
        let cases = [
            (
                packet(Status::Created),
                None,
                cutoff_after,
                Some(ExpiryReason::TtlExceeded),
            ),
            (
                packet(Status::Failed),
                None,
                cutoff_after,
                Some(ExpiryReason::TtlExceeded),
            ),
            (packet(Status::Created), None, cutoff_before, None),
            (packet(Status::Completed), None, cutoff_after, None),
            (packet(Status::Expired), None, cutoff_after, None),
            (
                waiting(Some(5)),
                past,
                cutoff_before,
                Some(ExpiryReason::HitlTimeout),
            ),
            (waiting(Some(5)), future, cutoff_before, None),
            (
                waiting(Some(5)),
                past,
                cutoff_after,
                Some(ExpiryReason::HitlTimeout),
            ),
            (packet(Status::Claimed), past, cutoff_before, None),
        ];
        for (index, (packet, deadline, cutoff, expected)) in cases.into_iter().enumerate() {
            assert_eq!(
                expiry_due(&packet, deadline, cutoff, now),
                expected,
                "case {index}"
            );
        }
    }

    #[test]
    fn expiring_twice_is_refused() {
        let now = Timestamp::now();
        let change = expire(
            &packet(Status::Completed),
            "system:soft_delete",
            "soft_delete",
            now,
        )
        .expect("expire");
        assert_eq!(change.packet.status, Status::Expired);
        assert_eq!(change.events[0].details["previous_status"], "completed");
        assert!(matches!(
            expire(&change.packet, "system:soft_delete", "soft_delete", now),
            Err(Refusal::AlreadyExpired { .. })
        ));
    }
}
