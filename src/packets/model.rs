//! The handoff packet as it travels on the wire and sits in the store (spec §2).
//!
//! Request types parse, they don't validate: once a `PacketCreate` exists it satisfies §2.1–2.4, so the
//! state machine and the store never see a malformed packet. Every optional field serialises (as `null`)
//! because the reference server emitted them all and SDK users read them.

use crate::timestamp::Timestamp;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

/// The packet-schema version every packet carries.
pub const PACKET_SCHEMA_VERSION: &str = "1.0.0";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Created,
    Claimed,
    InProgress,
    AwaitingHuman,
    Completed,
    Failed,
    Expired,
}

impl Status {
    pub const ALL: [Status; 7] = [
        Status::Created,
        Status::Claimed,
        Status::InProgress,
        Status::AwaitingHuman,
        Status::Completed,
        Status::Failed,
        Status::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Claimed => "claimed",
            Status::InProgress => "in_progress",
            Status::AwaitingHuman => "awaiting_human",
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::Expired => "expired",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        Status::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Low,
    #[default]
    Normal,
    High,
    Critical,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Critical => "critical",
        }
    }

    pub fn parse(text: &str) -> Option<Priority> {
        [
            Priority::Low,
            Priority::Normal,
            Priority::High,
            Priority::Critical,
        ]
        .into_iter()
        .find(|priority| priority.as_str() == text)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SourceAgent {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub framework: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TargetAgent {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub framework: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Metadata {
    pub source_agent: SourceAgent,
    pub target_agent: TargetAgent,
    #[serde(default = "Timestamp::now")]
    pub created_at: Timestamp,
    #[serde(default)]
    pub claimed_at: Option<Timestamp>,
    #[serde(default)]
    pub completed_at: Option<Timestamp>,
    #[serde(default)]
    pub priority: Priority,
    #[serde(default)]
    pub tags: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConversationRole {
    User,
    Agent,
    System,
    Human,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ContextEntry {
    pub role: ConversationRole,
    pub content: String,
    #[serde(default)]
    pub timestamp: Option<Timestamp>,
    #[serde(default)]
    pub metadata: Option<Map<String, Value>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Artifact {
    pub key: String,
    #[serde(deserialize_with = "artifact_value")]
    pub value: Value,
    #[serde(default)]
    pub content_type: Option<String>,
}

/// Artifact values are text, objects or arrays; numbers and booleans are refused as in the reference.
fn artifact_value<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
    let value = Value::deserialize(deserializer)?;
    match value {
        Value::String(_) | Value::Object(_) | Value::Array(_) => Ok(value),
        _ => Err(serde::de::Error::custom(
            "Input should be a valid string, dictionary or list",
        )),
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Context {
    pub summary: String,
    #[serde(default)]
    pub conversation_state: Vec<ContextEntry>,
    #[serde(default)]
    pub artifacts: Vec<Artifact>,
    #[serde(default)]
    pub custom: Map<String, Value>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Decision {
    pub id: String,
    pub decision: String,
    pub rationale: String,
    #[serde(default)]
    pub alternatives: Vec<String>,
    #[serde(default)]
    pub decided_by: Option<String>,
    #[serde(default)]
    pub timestamp: Option<Timestamp>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PendingAction {
    pub id: String,
    pub description: String,
    pub assignee: String,
    #[serde(default)]
    pub priority: Option<Priority>,
    #[serde(default)]
    pub depends_on: Vec<String>,
    #[serde(default)]
    pub deadline: Option<Timestamp>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CompletedAction {
    pub id: String,
    pub description: String,
    pub result: String,
    #[serde(default)]
    pub completed_by: Option<String>,
    #[serde(default)]
    pub completed_at: Option<Timestamp>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FailedAction {
    pub id: String,
    pub description: String,
    pub error: String,
    #[serde(default, deserialize_with = "lax::optional_int")]
    pub retries_remaining: Option<i64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Actions {
    #[serde(default)]
    pub pending: Vec<PendingAction>,
    #[serde(default)]
    pub completed: Vec<CompletedAction>,
    #[serde(default)]
    pub failed: Vec<FailedAction>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DependencyType {
    Data,
    Api,
    HumanApproval,
    ExternalEvent,
    Resource,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DependencyStatus {
    Blocked,
    Available,
    #[default]
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Dependency {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: DependencyType,
    pub description: String,
    #[serde(default)]
    pub status: DependencyStatus,
    #[serde(default)]
    pub source: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HitlCheckpoint {
    #[serde(default = "lax::yes", deserialize_with = "lax::bool")]
    pub required: bool,
    pub reason: String,
    #[serde(default)]
    pub question: Option<String>,
    #[serde(default)]
    pub options: Option<Vec<String>>,
    #[serde(default)]
    pub response: Option<String>,
    #[serde(default)]
    pub responded_at: Option<Timestamp>,
    #[serde(default)]
    pub responded_by: Option<String>,
    #[serde(default)]
    pub notes: Option<String>,
    #[serde(default, deserialize_with = "lax::optional_int")]
    pub timeout_seconds: Option<i64>,
}

/// A stored packet, exactly as the API returns it (§2.5).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Packet {
    pub id: Uuid,
    pub version: String,
    pub parent_packet_id: Option<Uuid>,
    pub metadata: Metadata,
    pub context: Context,
    pub decisions: Vec<Decision>,
    pub actions: Actions,
    pub dependencies: Vec<Dependency>,
    pub hitl: Option<HitlCheckpoint>,
    pub status: Status,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// `POST /packets` and the body of `POST /packets/{id}/chain` (§2.1). Unknown keys are ignored.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
pub struct PacketCreate {
    #[serde(default)]
    pub parent_packet_id: Option<Uuid>,
    pub metadata: Metadata,
    pub context: Context,
    #[serde(default)]
    pub decisions: Vec<Decision>,
    #[serde(default)]
    pub actions: Actions,
    #[serde(default)]
    pub dependencies: Vec<Dependency>,
    #[serde(default)]
    pub hitl: Option<HitlCheckpoint>,
    #[serde(default)]
    pub schema_id: Option<String>,
}

/// `PATCH /packets/{id}` (§2.10). Absent and `null` both mean "leave as is".
#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct PacketUpdate {
    #[serde(default)]
    pub status: Option<Status>,
    #[serde(default)]
    pub context: Option<Context>,
    #[serde(default)]
    pub decisions: Option<Vec<Decision>>,
    #[serde(default)]
    pub actions: Option<Actions>,
    #[serde(default)]
    pub dependencies: Option<Vec<Dependency>>,
    #[serde(default)]
    pub hitl: Option<HitlCheckpoint>,
}

/// `POST /packets/{id}/claim`.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
pub struct Claimant {
    pub agent_id: String,
    pub agent_name: String,
    #[serde(default)]
    pub framework: Option<String>,
}

/// `POST /packets/{id}/respond`.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
pub struct HumanResponse {
    pub response: String,
    pub responded_by: String,
    #[serde(default)]
    pub notes: Option<String>,
}

/// Pydantic's lax mode, which SDK users rely on: `"5"` is an int, `"true"` a bool.
mod lax {
    use serde::{Deserialize, Deserializer};
    use serde_json::Value;

    pub fn yes() -> bool {
        true
    }

    pub fn bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let parsed = match &value {
            Value::Bool(flag) => Some(*flag),
            Value::Number(number) => match number.as_i64() {
                Some(0) => Some(false),
                Some(1) => Some(true),
                _ => None,
            },
            Value::String(text) => match text.trim().to_ascii_lowercase().as_str() {
                "true" | "t" | "yes" | "y" | "on" | "1" => Some(true),
                "false" | "f" | "no" | "n" | "off" | "0" => Some(false),
                _ => None,
            },
            _ => None,
        };
        parsed.ok_or_else(|| serde::de::Error::custom("Input should be a valid boolean"))
    }

    pub fn optional_int<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<i64>, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let parsed = match &value {
            Value::Null => return Ok(None),
            Value::Number(number) => number.as_i64().or_else(|| {
                number
                    .as_f64()
                    .filter(|float| float.fract() == 0.0 && float.abs() < 9.0e15)
                    .map(|float| float as i64)
            }),
            Value::String(text) => text.trim().parse::<i64>().ok(),
            _ => None,
        };
        parsed
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom("Input should be a valid integer"))
    }
}
