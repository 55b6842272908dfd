//! The handoff packet as it travels on the wire and sits in the store (docs/api.md §2).
//!
//! Request types parse, they don't validate: once a `PacketCreate` exists it satisfies docs/api.md §2.1–§2.4, so the
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
    #[schema(schema_with = artifact_value_schema)]
    pub value: Value,
    #[serde(default)]
    pub content_type: Option<String>,
}

fn artifact_value_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([
            Type::String,
            Type::Object,
            Type::Array,
        ]))
        .description(Some("Text, an object or a list"))
        .build()
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
    #[serde(default, deserialize_with = "crate::lax::optional_int")]
    #[schema(schema_with = crate::lax::optional_int_schema)]
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
    #[serde(default = "crate::lax::yes", deserialize_with = "crate::lax::bool")]
    #[schema(schema_with = crate::lax::bool_schema)]
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
    #[serde(default, deserialize_with = "crate::lax::optional_int")]
    #[schema(schema_with = crate::lax::optional_int_schema)]
    pub timeout_seconds: Option<i64>,
}

impl HitlCheckpoint {
    /// A required checkpoint must say why (the reference's rule, for creates and PATCHes alike).
    pub fn lacks_reason(&self) -> bool {
        self.required && self.reason.is_empty()
    }

    /// Whether any part of a human's answer is set.
    pub fn is_answered(&self) -> bool {
        self.answer() != (None, None, None)
    }

    /// The human's answer, as `respond` records it.
    pub fn answer(&self) -> (Option<&str>, Option<&str>, Option<Timestamp>) {
        (
            self.response.as_deref(),
            self.responded_by.as_deref(),
            self.responded_at,
        )
    }
}

/// A stored packet, exactly as the API returns it (docs/api.md §2.5).
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
    /// The verdict on the sender's claims (decision 12); null for a packet created without claims.
    #[serde(default)]
    pub verification: Option<super::verification::Verification>,
}

/// `POST /packets` and the body of `POST /packets/{id}/chain` (docs/api.md §2.1). Unknown keys are ignored.
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
    #[schema(schema_with = unanswered_hitl)]
    pub hitl: Option<HitlCheckpoint>,
    #[serde(default)]
    pub schema_id: Option<String>,
    /// The sender's claims, verified before the packet is stored (decision 12).
    #[serde(default)]
    pub verification: Option<super::verification::VerificationRequest>,
}

/// `PATCH /packets/{id}` (docs/api.md §2.10). Absent and `null` both mean "leave as is".
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
    #[schema(schema_with = unanswered_hitl)]
    pub hitl: Option<HitlCheckpoint>,
}

/// The checkpoint a create or PATCH may send: the human's answer (`response`, `responded_by`,
/// `responded_at`) is recorded by `POST /packets/{id}/respond` alone, so a create leaves it out and a PATCH
/// leaves it out or repeats it as stored.
fn unanswered_hitl() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, OneOfBuilder, Type};
    use utoipa::openapi::Ref;
    let null = || ObjectBuilder::new().schema_type(Type::Null);
    OneOfBuilder::new()
        .item(
            AllOfBuilder::new()
                .item(Ref::from_schema_name("HitlCheckpoint"))
                .item(
                    ObjectBuilder::new()
                        .property("response", null())
                        .property("responded_by", null())
                        .property("responded_at", null()),
                ),
        )
        .item(null())
        .description(Some(
            "The answer fields are set only by POST /packets/{id}/respond: leave them out (a PATCH keeps the stored answer, or may repeat it unchanged)",
        ))
        .into()
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
