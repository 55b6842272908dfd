//! `/api/v1/records…`: evidence records as stored, with their verification status, and the public key
//! that lets anyone verify an exported record offline (interceptor.md "Records API").

use super::error::Error;
use super::extract::{Caller, PathId};
use super::AppState;
use crate::auth::Role;
use crate::records::SealedRecord;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::{json, Value};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/records/public-key", get(public_key))
        .route("/records/{record_id}", get(fetch))
}

#[derive(Serialize)]
struct RecordView {
    #[serde(flatten)]
    sealed: SealedRecord,
    /// Whether the record still hashes to its seal and the seal verifies with this server's key.
    signature_valid: bool,
    /// `valid`, `digest_mismatch`, `bad_signature` or `unknown_key`.
    integrity: &'static str,
}

async fn public_key(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, Error> {
    caller.require(Role::Reader)?;
    Ok(Json(json!({
        "algorithm": "ed25519",
        "key_id": state.record_key.key_id(),
        "public_key": state.record_key.public_key_base64(),
        "signed_message": "the 32 bytes of seal.sha256 (SHA-256 of the record's canonical JSON)",
    })))
}

async fn fetch(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Json<RecordView>, Error> {
    caller.require(Role::Reader)?;
    let sealed = state
        .store
        .get_record(caller.tenant(), id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("Record {id} not found")))?;
    let integrity = state.record_key.verify(&sealed);
    Ok(Json(RecordView {
        sealed,
        signature_valid: integrity.is_valid(),
        integrity: integrity.as_str(),
    }))
}
