//! History events: the audit trail every packet change appends to (docs/api.md §8).

use crate::timestamp::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// One entry of `GET /packets/{id}/history` (docs/api.md §8.1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = PacketEvent)]
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

/// `GET /audit` (docs/api.md §8.3): exact filters, an inclusive time range, newest first.
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub packet_id: Option<Uuid>,
    pub created_after: Option<Timestamp>,
    pub created_before: Option<Timestamp>,
    /// Offset paging only.
    pub page: crate::paging::Page,
}

/// One audit log entry: a history event under the audit log's names.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: Uuid,
    pub packet_id: Uuid,
    pub actor: String,
    pub action: String,
    pub resource: &'static str,
    pub details: Value,
    pub timestamp: Timestamp,
}

impl From<PacketEvent> for AuditEntry {
    fn from(event: PacketEvent) -> Self {
        AuditEntry {
            id: event.id,
            packet_id: event.packet_id,
            actor: event.actor,
            action: event.event_type,
            resource: "packet",
            details: if event.details.is_null() {
                Value::Object(Default::default())
            } else {
                event.details
            },
            timestamp: event.timestamp,
        }
    }
}

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
