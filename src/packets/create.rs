//! Turning an accepted create or chain request into a new packet and its first history events.

use super::history::{actor_for_agent, NewEvent};
use super::lifecycle::{initial_status, Change, Refusal};
use super::model::{Packet, PacketCreate, PACKET_SCHEMA_VERSION};
use super::notices::Notice;
use super::verification::Verification;
use crate::timestamp::Timestamp;
use serde_json::json;
use uuid::Uuid;

/// A rule of docs/api.md §2.4 that serde's types cannot express.
#[derive(Clone, Debug, PartialEq)]
pub struct InvalidPacket {
    /// Location below the body, e.g. `["hitl"]`.
    pub loc: Vec<String>,
    pub message: String,
}

pub fn check(request: &PacketCreate) -> Result<(), InvalidPacket> {
    let problem = match &request.hitl {
        Some(hitl) if hitl.lacks_reason() => Refusal::HitlWithoutReason,
        // An agent cannot hand over a checkpoint that claims a human already answered it.
        Some(hitl) if hitl.is_answered() => Refusal::AnswerOnlyByRespond,
        _ => return Ok(()),
    };
    Err(InvalidPacket {
        loc: vec!["hitl".into()],
        message: problem.message(),
    })
}

/// A new packet from a create request and the verdict on its claims, with its `created` event (and the
/// verdict's).
pub fn new_packet(
    id: Uuid,
    request: PacketCreate,
    verification: Option<Verification>,
    now: Timestamp,
) -> Change {
    let packet = packet_from(id, request, verification, now);
    let mut events = vec![created_event(&packet, json!({}), now)];
    events.extend(verification_event(&packet, now));
    Change {
        events,
        notice: super::verification::announce_verdict(
            Notice::new("packet.created", &packet, now),
            &packet,
            now,
        ),
        packet,
    }
}

/// A child packet chained to `parent_id`: the child's `created` event and the parent's `chained` event.
pub fn chained_packet(
    id: Uuid,
    request: PacketCreate,
    verification: Option<Verification>,
    parent_id: Uuid,
    now: Timestamp,
) -> Change {
    let child = packet_from(
        id,
        PacketCreate {
            parent_packet_id: Some(parent_id),
            ..request
        },
        verification,
        now,
    );
    let created = created_event(
        &child,
        json!({"parent_packet_id": parent_id, "chain": true}),
        now,
    );
    let chained = NewEvent::new(
        parent_id,
        "chained",
        actor_for_agent(&child.metadata.source_agent.id),
        json!({"child_packet_id": child.id}),
        now,
    );
    let mut events = vec![created];
    events.extend(verification_event(&child, now));
    events.push(chained);
    let chained_notice =
        Notice::new("packet.chained", &child, now).with("parent_packet_id", json!(parent_id));
    Change {
        notice: super::verification::announce_verdict(chained_notice, &child, now),
        packet: child,
        events,
    }
}

fn packet_from(
    id: Uuid,
    request: PacketCreate,
    verification: Option<Verification>,
    now: Timestamp,
) -> Packet {
    let hitl_required = request.hitl.as_ref().is_some_and(|hitl| hitl.required);
    Packet {
        id,
        version: PACKET_SCHEMA_VERSION.to_string(),
        parent_packet_id: request.parent_packet_id,
        metadata: request.metadata,
        context: request.context,
        decisions: request.decisions,
        actions: request.actions,
        dependencies: request.dependencies,
        hitl: request.hitl,
        status: initial_status(hitl_required),
        created_at: now,
        updated_at: now,
        verification,
    }
}

/// The verdict's history event, when the packet came with claims; the actor is the server.
fn verification_event(packet: &Packet, now: Timestamp) -> Option<NewEvent> {
    let verification = packet.verification.as_ref()?;
    Some(NewEvent::new(
        packet.id,
        verification.event_type(),
        "system:verification".to_string(),
        verification.event_details(),
        now,
    ))
}

fn created_event(packet: &Packet, details: serde_json::Value, now: Timestamp) -> NewEvent {
    NewEvent::new(
        packet.id,
        "created",
        actor_for_agent(&packet.metadata.source_agent.id),
        details,
        now,
    )
}
