//! History events: the audit trail every packet change appends to (spec §8).

use crate::timestamp::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// One entry of `GET /packets/{id}/history` (§8.1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    pub id: Uuid,
    pub packet_id: Uuid,
    pub event_type: String,
    pub actor: String,
    pub details: Value,
    pub timestamp: Timestamp,
}

/// Events read back from the store have the same shape as the ones written.
pub type PacketEvent = NewEvent;

impl NewEvent {
    pub fn new(
        packet_id: Uuid,
        event_type: &str,
        actor: String,
        details: Value,
        at: Timestamp,
    ) -> Self {
        Self {
            id: Uuid::new_v4(),
            packet_id,
            event_type: event_type.to_string(),
            actor,
            details,
            timestamp: at,
        }
    }
}

pub fn actor_for_agent(agent_id: &str) -> String {
    format!("agent:{agent_id}")
}
