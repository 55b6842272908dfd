//! `/api/v1/packets/batch…` (docs/api.md §1.1, docs/api.md §2.7): up to 50 creates, claims or completions in one request. Items
//! are applied one by one, each committed on its own, so one bad item never costs the others; every failure is
//! reported beside the successes with the reference's wording.

use super::error::{Error, ErrorBody, Invalid};
use super::extract::{ApiJson, Caller};
use super::metrics::ClaimOutcome;
use super::AppState;
use crate::packets::lifecycle::Refusal;
use crate::packets::model::{Claimant, Packet, PacketCreate};
use crate::packets::{self, CommandError};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// Most items in one batch (`HR_BATCH_MAX_SIZE` in the reference).
pub const MAX_BATCH: usize = 50;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(claim))
        .routes(routes!(complete))
}

#[derive(Deserialize, ToSchema)]
struct BatchCreate {
    /// Packets to create, each a `PacketCreate`: each is validated on its own, so one malformed item is
    /// reported in `errors` and the others are created.
    #[schema(value_type = Vec<serde_json::Value>, min_items = 1, max_items = 50)]
    packets: Vec<Value>,
}

#[derive(Serialize, ToSchema)]
struct Created {
    created: Vec<Packet>,
    errors: Vec<IndexError>,
}

#[derive(Serialize, ToSchema)]
struct IndexError {
    index: usize,
    error: String,
}

#[derive(Deserialize, ToSchema)]
struct BatchClaim {
    #[schema(min_items = 1, max_items = 50)]
    packet_ids: Vec<Uuid>,
    agent_id: String,
    agent_name: String,
    #[serde(default)]
    framework: Option<String>,
}

#[derive(Deserialize, ToSchema)]
struct BatchComplete {
    #[schema(min_items = 1, max_items = 50)]
    packet_ids: Vec<Uuid>,
}

#[derive(Serialize, ToSchema)]
struct Claimed {
    claimed: Vec<Packet>,
    errors: Vec<PacketError>,
}

#[derive(Serialize, ToSchema)]
struct Completed {
    completed: Vec<Packet>,
    errors: Vec<PacketError>,
}

#[derive(Serialize, ToSchema)]
struct PacketError {
    packet_id: Uuid,
    error: String,
}

/// 422 for an empty `field` list, as the reference's `min_length=1`.
fn require_items(field: &str, count: usize) -> Result<(), Error> {
    if count == 0 {
        return Err(Error::validation(Invalid {
            input: json!([]),
            ..Invalid::new(
                "too_short",
                vec![json!("body"), json!(field)],
                "List should have at least 1 item after validation, not 0",
            )
        }));
    }
    Ok(())
}

/// 422 for more than 50 ids (claims and completions; creates answer 400, see `create`).
fn require_at_most_max(count: usize) -> Result<(), Error> {
    if count > MAX_BATCH {
        return Err(Error::validation(Invalid::new(
            "too_long",
            vec![json!("body"), json!("packet_ids")],
            format!("List should have at most {MAX_BATCH} items after validation, not {count}"),
        )));
    }
    Ok(())
}

#[utoipa::path(post, path = "/packets/batch", tag = "batch", request_body = BatchCreate,
    responses((status = 201, description = "Each item created or reported by index", body = Created),
        (status = 400, description = "More than 50 packets", body = ErrorBody), (status = 422, description = "No packets", body = ErrorBody),
        (status = 429, description = "Daily create cap reached (a batch takes one)", body = ErrorBody)))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(batch): ApiJson<BatchCreate>,
) -> Result<(StatusCode, Json<Created>), Error> {
    require_items("packets", batch.packets.len())?;
    if batch.packets.len() > MAX_BATCH {
        return Err(Error::BadRequest(format!(
            "Batch size exceeds maximum of {MAX_BATCH}"
        )));
    }
    packets::spend_daily_create(&state.limiter, state.store.as_ref(), &caller.0).await?;
    let mut reply = Created {
        created: Vec::new(),
        errors: Vec::new(),
    };
    let store = state.store.as_ref();
    for (index, raw) in batch.packets.into_iter().enumerate() {
        let request = match serde_path_to_error::deserialize::<_, PacketCreate>(raw) {
            Ok(request) => request,
            Err(error) => {
                reply.errors.push(IndexError {
                    index,
                    error: invalid_item(&error),
                });
                continue;
            }
        };
        let created = match super::packets::admit(&state, &caller, request).await {
            Ok(admitted) => packets::create_packet(store, caller.tenant(), admitted).await,
            Err(refused) => Err(refused),
        };
        match created {
            Ok(packet) => {
                state.metrics.packet_created(caller.tenant());
                reply.created.push(packet);
            }
            Err(error) => reply.errors.push(IndexError {
                index,
                error: command_failure(error),
            }),
        }
    }
    Ok((StatusCode::CREATED, Json(reply)))
}

#[utoipa::path(post, path = "/packets/batch/claim", tag = "batch", request_body = BatchClaim,
    responses((status = 200, description = "Each packet claimed or reported", body = Claimed), (status = 422, description = "Invalid request", body = ErrorBody)))]
async fn claim(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(batch): ApiJson<BatchClaim>,
) -> Result<Json<Claimed>, Error> {
    require_items("packet_ids", batch.packet_ids.len())?;
    require_at_most_max(batch.packet_ids.len())?;
    let claimant = Claimant {
        agent_id: batch.agent_id,
        agent_name: batch.agent_name,
        framework: batch.framework,
    };
    let mut reply = Claimed {
        claimed: Vec::new(),
        errors: Vec::new(),
    };
    for packet_id in batch.packet_ids {
        match packets::claim_packet(state.store.as_ref(), caller.tenant(), packet_id, &claimant)
            .await
        {
            Ok(packet) => {
                state.metrics.claim(ClaimOutcome::Won);
                reply.claimed.push(packet);
            }
            Err(error) => {
                if matches!(error, CommandError::Refused(_)) {
                    state.metrics.claim(ClaimOutcome::Refused);
                }
                reply.errors.push(PacketError {
                    packet_id,
                    error: claim_failure(packet_id, error),
                });
            }
        }
    }
    Ok(Json(reply))
}

#[utoipa::path(post, path = "/packets/batch/complete", tag = "batch", request_body = BatchComplete,
    responses((status = 200, description = "Each packet completed or reported", body = Completed), (status = 422, description = "Invalid request", body = ErrorBody)))]
async fn complete(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(batch): ApiJson<BatchComplete>,
) -> Result<Json<Completed>, Error> {
    require_items("packet_ids", batch.packet_ids.len())?;
    require_at_most_max(batch.packet_ids.len())?;
    let mut reply = Completed {
        completed: Vec::new(),
        errors: Vec::new(),
    };
    for packet_id in batch.packet_ids {
        match packets::complete_in_batch(state.store.as_ref(), caller.tenant(), packet_id).await {
            Ok(packet) => reply.completed.push(packet),
            Err(error) => reply.errors.push(PacketError {
                packet_id,
                error: complete_failure(packet_id, error),
            }),
        }
    }
    Ok(Json(reply))
}

/// A batch item that is not a valid PacketCreate: where and why, as one line.
fn invalid_item(error: &serde_path_to_error::Error<serde_json::Error>) -> String {
    let path = error.path().to_string();
    if path == "." {
        format!("422: {}", error.inner())
    } else {
        format!("422: {path}: {}", error.inner())
    }
}

/// Any other failure of an item: the status the single-item route would answer, and its detail.
fn command_failure(error: CommandError) -> String {
    Error::from(error).summary()
}

fn claim_failure(packet_id: Uuid, error: CommandError) -> String {
    match error {
        CommandError::NotFound(_) => format!("Packet {packet_id} not found"),
        CommandError::Refused(Refusal::Expired { .. }) => format!("Packet {packet_id} has expired"),
        CommandError::Refused(Refusal::AlreadyClaimed { claimed_by, .. }) => {
            format!("Already claimed by {}", claimed_by.id)
        }
        CommandError::Refused(Refusal::IllegalTransition { from, .. }) => {
            format!("Cannot claim from status '{}'", from.as_str())
        }
        other => command_failure(other),
    }
}

fn complete_failure(packet_id: Uuid, error: CommandError) -> String {
    match error {
        CommandError::NotFound(_) => format!("Packet {packet_id} not found"),
        CommandError::Refused(Refusal::IllegalTransition { from, .. }) => {
            format!("Cannot complete from status '{}'", from.as_str())
        }
        other => command_failure(other),
    }
}
