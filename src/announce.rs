//! What a committed write announces (docs/api.md §6, §7): webhook outbox rows, written in the same transaction
//! as the write, and a live event, published once it is committed (in this process on SQLite; through
//! `NOTIFY` in the same transaction on PostgreSQL, so that every instance hears it). Packet changes and
//! evaluations announce; `packets::notices` and `evaluations::notices` say what.

use crate::timestamp::Timestamp;
use crate::webhooks::OutboxEvent;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Announcement {
    pub outbox: Vec<OutboxEvent>,
    /// Live events, in order (a verified packet's create announces its verdict after it).
    pub live: Vec<LiveNotice>,
}

impl Announcement {
    /// Webhooks only (tests and tools).
    pub fn webhooks(outbox: Vec<OutboxEvent>) -> Self {
        Self {
            outbox,
            live: Vec::new(),
        }
    }

    /// Adds what `other` announces after this one's.
    pub fn extend(&mut self, other: Announcement) {
        self.outbox.extend(other.outbox);
        self.live.extend(other.live);
    }
}

/// A live event with what subscribers filter on (docs/api.md §7.1 channels) beside its envelope.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LiveNotice {
    pub tenant: String,
    /// The envelope's `type` (the SSE `event:` name).
    pub kind: String,
    /// The packet it is about (`packet:` channels); none for an evaluation.
    pub packet_id: Option<Uuid>,
    /// The packet's status after the change (`status:` channels); empty for an evaluation.
    pub status: String,
    /// Agent ids (`agent:` channels): a packet's source and target, an evaluation's agent.
    pub agents: Vec<String>,
    /// The envelope of docs/api.md §7.3, as JSON text. Empty when it was left out of a notification too large
    /// for PostgreSQL's `NOTIFY`: the receiving instance then rebuilds a packet's from the packet, or uses
    /// `fallback`.
    pub envelope: String,
    /// A smaller envelope to send when the whole one does not fit a notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    /// What a packet's envelope is built from besides its metadata.
    #[serde(default)]
    pub details: Map<String, Value>,
    pub at: Timestamp,
}
