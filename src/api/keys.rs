//! `/api/v1/keys…`: API key administration (docs/api.md §1.3, docs/api.md decision 5). Admin only.

use super::error::{Error, ErrorBody, Invalid};
use super::extract::{ApiJson, Caller, PathId};
use super::AppState;
use crate::auth::administration::{self, KeyError, KeyRequest};
use crate::auth::{rbac, ApiKey, NewApiKey, Role, Tier};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(revoke))
        .routes(routes!(rotate))
}

#[derive(Deserialize, ToSchema)]
struct KeyCreate {
    /// Who uses the key; not blank.
    #[schema(min_length = 1, pattern = "\\S")]
    name: String,
    #[serde(default)]
    tenant_id: Option<String>,
    #[serde(default)]
    role: Option<Role>,
    #[serde(default)]
    tier: Option<Tier>,
}

/// The ApiKey object of docs/api.md §1.3; `key` holds the plaintext only in create and rotate responses.
#[derive(Serialize, ToSchema)]
pub(super) struct KeyView {
    #[serde(flatten)]
    key: ApiKey,
    #[serde(rename = "key")]
    plaintext: Option<String>,
}

impl From<ApiKey> for KeyView {
    fn from(key: ApiKey) -> Self {
        Self {
            key,
            plaintext: None,
        }
    }
}

impl From<NewApiKey> for KeyView {
    fn from(new: NewApiKey) -> Self {
        Self {
            key: new.key,
            plaintext: Some(new.plaintext),
        }
    }
}

#[utoipa::path(post, path = "/keys", tag = "keys", request_body = KeyCreate,
    responses((status = 201, description = "The key, with its plaintext shown once", body = KeyView), (status = 422, description = "Invalid request", body = ErrorBody)))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<KeyCreate>,
) -> Result<(StatusCode, Json<KeyView>), Error> {
    let request = KeyRequest {
        name: request.name,
        tenant_id: request.tenant_id,
        role: request.role,
        tier: request.tier,
    };
    let key = administration::create_key(
        state.store.as_ref(),
        &caller.0,
        request,
        state.config.default_tier,
    )
    .await
    .map_err(|error| refused(error, ""))?;
    tracing::info!(key_id = %key.key.id, tenant = %key.key.tenant_id, role = key.key.role.as_str(), "api key created");
    Ok((StatusCode::CREATED, Json(key.into())))
}

#[utoipa::path(get, path = "/keys", tag = "keys",
    responses((status = 200, description = "The tenant's keys, revoked ones included", body = Vec<KeyView>)))]
async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<KeyView>>, Error> {
    let keys = state.store.list_api_keys(caller.tenant()).await?;
    Ok(Json(keys.into_iter().map(KeyView::from).collect()))
}

#[utoipa::path(delete, path = "/keys/{key_id}", tag = "keys", params(("key_id" = Uuid, Path, description = "Key id")),
    responses((status = 204, description = "Revoked"), (status = 404, description = "Not found", body = ErrorBody), (status = 409, description = "Already revoked", body = ErrorBody)))]
async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<StatusCode, Error> {
    administration::revoke_key(state.store.as_ref(), &caller.0, id)
        .await
        .map_err(|error| refused(error, ""))?;
    state.keys.clear();
    tracing::info!(key_id = %id, "api key revoked");
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/keys/{key_id}/rotate", tag = "keys", params(("key_id" = Uuid, Path, description = "Key id")),
    responses((status = 201, description = "The replacement key; the old one is revoked", body = KeyView), (status = 404, description = "Not found", body = ErrorBody), (status = 409, description = "Conflict", body = ErrorBody)))]
async fn rotate(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<(StatusCode, Json<KeyView>), Error> {
    let replacement = administration::rotate_key(state.store.as_ref(), &caller.0, id)
        .await
        .map_err(|error| refused(error, " — cannot rotate"))?;
    state.keys.clear();
    tracing::info!(old_key_id = %id, key_id = %replacement.key.id, "api key rotated");
    Ok((StatusCode::CREATED, Json(replacement.into())))
}

/// A key command's refusal as HTTP; `conflict_suffix` finishes the 409's text.
fn refused(error: KeyError, conflict_suffix: &str) -> Error {
    match error {
        KeyError::BlankName => Error::validation(Invalid::new(
            "string_too_short",
            vec![json!("body"), json!("name")],
            "String should have at least 1 character",
        )),
        KeyError::NeedsSystem => Error::Forbidden(rbac::SYSTEM_DENIAL.to_string()),
        error @ KeyError::NotFound(_) => Error::NotFound(error.to_string()),
        error @ KeyError::AlreadyRevoked(_) => {
            Error::Conflict(json!(format!("{error}{conflict_suffix}")))
        }
        KeyError::Store(error) => error.into(),
    }
}
