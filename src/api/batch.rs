//! `/api/v1/packets/batch…` (spec §1.1, §2.7): up to 50 creates, claims or completions in one request. Items
//! are applied one by one, each committed on its own, so one bad item never costs the others; every failure is
//! reported beside the successes with the reference's wording.

use super::error::{Error, Invalid};
use super::extract::{ApiJson, Caller};
use super::metrics::ClaimOutcome;
use super::packets::take_daily_create;
use super::AppState;
use crate::packets::lifecycle::Refusal;
use crate::packets::model::{Claimant, Packet, PacketCreate, PacketUpdate, Status};
use crate::packets::{self, CommandError};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

/// Most items in one batch (`HR_BATCH_MAX_SIZE` in the reference).
pub const MAX_BATCH: usize = 50;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/packets/batch", post(create))
        .route("/packets/batch/claim", post(claim))
        .route("/packets/batch/complete", post(complete))
}

#[derive(Deserialize)]
struct BatchCreate {
    /// Raw objects: each is validated on its own, so one malformed packet fails alone.
    packets: Vec<Value>,
}

#[derive(Serialize)]
struct Created {
    created: Vec<Packet>,
    errors: Vec<IndexError>,
}

#[derive(Serialize)]
struct IndexError {
    index: usize,
    error: String,
}

#[derive(Deserialize)]
struct BatchClaim {
    packet_ids: Vec<Uuid>,
    agent_id: String,
    agent_name: String,
    #[serde(default)]
    framework: Option<String>,
}

#[derive(Deserialize)]
struct BatchComplete {
    packet_ids: Vec<Uuid>,
}

#[derive(Serialize)]
struct Claimed {
    claimed: Vec<Packet>,
    errors: Vec<PacketError>,
}

#[derive(Serialize)]
struct Completed {
    completed: Vec<Packet>,
    errors: Vec<PacketError>,
}

#[derive(Serialize)]
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
    take_daily_create(&state, &caller).await?;
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
        let created = match packets::admit(store, &state.schemas, caller.tenant(), request).await {
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

async fn complete(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(batch): ApiJson<BatchComplete>,
) -> Result<Json<Completed>, Error> {
    require_items("packet_ids", batch.packet_ids.len())?;
    require_at_most_max(batch.packet_ids.len())?;
    let completion = PacketUpdate {
        status: Some(Status::Completed),
        ..PacketUpdate::default()
    };
    let mut reply = Completed {
        completed: Vec::new(),
        errors: Vec::new(),
    };
    for packet_id in batch.packet_ids {
        match packets::update_packet(
            state.store.as_ref(),
            caller.tenant(),
            packet_id,
            &completion,
        )
        .await
        {
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
