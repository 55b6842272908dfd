//! What a packet change tells the world (docs/api.md §7.3, decision 1): one notice per change, sent to live
//! subscribers and, when a hook may ask for it, written to the webhook outbox with the change.

use super::model::Packet;
use crate::announce::{Announcement, LiveNotice};
use crate::timestamp::Timestamp;
use crate::webhooks::OutboxEvent;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use uuid::Uuid;

/// A notice's envelope again, from the packet as it is now (for a live notice sent without it).
pub fn rebuild(live: &mut LiveNotice, packet: &Packet) {
    let notice = Notice {
        id: Uuid::nil(),
        kind: live.kind.clone(),
        packet_id: packet.id,
        details: live.details.clone(),
        at: live.at,
        followed_by: None,
    };
    live.envelope = notice.envelope(packet, &live.status);
}

#[derive(Clone, Debug, PartialEq)]
pub struct Notice {
    /// The event's id: the webhook body's `id` and `webhook-id`.
    pub id: Uuid,
    /// `packet.created`, `packet.claimed`, …, `packet.updated`, `packet.chained`, `hitl.response_ready`.
    pub kind: String,
    pub packet_id: Uuid,
    /// Fields beside `status` and `metadata` (`hitl_response`, `parent_packet_id`).
    pub details: Map<String, Value>,
    pub at: Timestamp,
    /// A second notice of the same change, announced after this one (`packet.verification_caught`).
    pub followed_by: Option<Box<Notice>>,
}

impl Notice {
    pub fn new(kind: impl Into<String>, packet: &Packet, at: Timestamp) -> Self {
        Self {
            id: Uuid::now_v7(),
            kind: kind.into(),
            packet_id: packet.id,
            details: Map::new(),
            at,
            followed_by: None,
        }
    }

    /// This notice, then `next` (announced in that order, as one change).
    pub fn followed_by(mut self, next: Notice) -> Self {
        self.followed_by = Some(Box::new(next));
        self
    }

    pub fn with(mut self, key: &str, value: Value) -> Self {
        self.details.insert(key.to_string(), value);
        self
    }

    /// The webhook event this notice fires, when hooks can ask for one: `packet.updated` is live only, and a
    /// chained child is a `packet.created` to a hook (docs/api.md §6.1 lists no `packet.chained`).
    pub fn webhook_event(&self) -> Option<&str> {
        match self.kind.as_str() {
            "packet.updated" => None,
            "packet.chained" => Some("packet.created"),
            kind => Some(kind),
        }
    }

    /// What this notice about `packet` (its state after the change) announces in `tenant`: the webhook event
    /// with the body of docs/api.md decision 1 (when hooks can ask for one), and the live event. The packet's
    /// metadata, which both carry, is serialised once.
    pub fn announcement(&self, tenant: &str, packet: &Packet) -> Announcement {
        let metadata = raw_json(&packet.metadata);
        let status = packet.status.as_str();
        let outbox = self.webhook_event().map(|name| OutboxEvent {
            id: self.id,
            name: name.to_string(),
            packet_id: Some(self.packet_id),
            body: to_json(&WebhookBody {
                id: self.id,
                event: name,
                timestamp: self.at,
                packet_id: self.packet_id,
                status,
                metadata: &metadata,
                details: &self.details,
            }),
            time: self.at,
        });
        let live = LiveNotice {
            tenant: tenant.to_string(),
            kind: self.kind.clone(),
            packet_id: Some(self.packet_id),
            status: status.to_string(),
            agents: vec![
                packet.metadata.source_agent.id.clone(),
                packet.metadata.target_agent.id.clone(),
            ],
            envelope: self.envelope_of(&metadata, status),
            fallback: None,
            details: self.details.clone(),
            at: self.at,
        };
        let mut announcement = Announcement {
            outbox: outbox.into_iter().collect(),
            live: vec![live],
        };
        if let Some(next) = &self.followed_by {
            announcement.extend(next.announcement(tenant, packet));
        }
        announcement
    }

    /// The live envelope (docs/api.md §7.3): `{"type", "packet_id", "data": {"status", "metadata", …}, "timestamp"}`,
    /// as JSON text.
    pub fn envelope(&self, packet: &Packet, status: &str) -> String {
        self.envelope_of(&raw_json(&packet.metadata), status)
    }

    fn envelope_of(&self, metadata: &RawValue, status: &str) -> String {
        to_json(&Envelope {
            kind: &self.kind,
            packet_id: self.packet_id,
            data: EnvelopeData {
                status,
                metadata,
                details: &self.details,
            },
            timestamp: self.at,
        })
    }
}

/// A webhook delivery's body (docs/api.md §6.2).
#[derive(Serialize)]
struct WebhookBody<'a> {
    id: Uuid,
    event: &'a str,
    timestamp: Timestamp,
    packet_id: Uuid,
    status: &'a str,
    metadata: &'a RawValue,
    details: &'a Map<String, Value>,
}

#[derive(Serialize)]
struct Envelope<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    packet_id: Uuid,
    data: EnvelopeData<'a>,
    timestamp: Timestamp,
}

#[derive(Serialize)]
struct EnvelopeData<'a> {
    status: &'a str,
    metadata: &'a RawValue,
    #[serde(flatten)]
    details: &'a Map<String, Value>,
}

/// [`to_json`] as a raw value, to embed in several documents.
fn raw_json(value: &impl Serialize) -> Box<RawValue> {
    serde_json::value::to_raw_value(value).unwrap_or_default()
}

/// Serialises what cannot fail to (structs, string-keyed maps and JSON values, whose numbers are finite).
fn to_json(value: &impl Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}
