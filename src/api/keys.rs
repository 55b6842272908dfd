//! `/api/v1/keys…`: API key administration (docs/api.md §1.3, docs/api.md decision 5). Admin only.

use super::error::{Error, ErrorBody, Invalid};
use super::extract::{ApiJson, Caller, PathId};
use super::AppState;
use crate::auth::{rbac, ApiKey, NewApiKey, Role, Tier};
use crate::store::KeyChange;
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
    let name = request.name.trim();
    if name.is_empty() {
        return Err(Error::validation(Invalid::new(
            "string_too_short",
            vec![json!("body"), json!("name")],
            "String should have at least 1 character",
        )));
    }
    let tenant = request
        .tenant_id
        .filter(|tenant| !tenant.trim().is_empty())
        .unwrap_or_else(|| caller.tenant().to_string());
    if !caller.0.administers(&tenant) {
        return Err(Error::Forbidden(rbac::SYSTEM_DENIAL.to_string()));
    }
    let key = NewApiKey::generate(
        name,
        &tenant,
        request.role.unwrap_or(Role::Admin),
        request.tier.unwrap_or(state.config.default_tier),
    );
    state.store.insert_api_key(&key).await?;
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
    guard_system_key(&state, &caller, id).await?;
    match state.store.revoke_api_key(caller.tenant(), id).await? {
        KeyChange::Done => {
            state.keys.clear();
            tracing::info!(key_id = %id, "api key revoked");
            Ok(StatusCode::NO_CONTENT)
        }
        KeyChange::AlreadyRevoked => Err(Error::Conflict(json!(format!(
            "API key {id} is already revoked"
        )))),
        KeyChange::NotFound => Err(Error::NotFound(format!("API key {id} not found"))),
    }
}

#[utoipa::path(post, path = "/keys/{key_id}/rotate", tag = "keys", params(("key_id" = Uuid, Path, description = "Key id")),
    responses((status = 201, description = "The replacement key; the old one is revoked", body = KeyView), (status = 404, description = "Not found", body = ErrorBody), (status = 409, description = "Conflict", body = ErrorBody)))]
async fn rotate(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<(StatusCode, Json<KeyView>), Error> {
    let old = state
        .store
        .get_api_key(caller.tenant(), id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("API key {id} not found")))?;
    let mut replacement = NewApiKey::generate(
        &format!("{} (rotated)", old.name),
        &old.tenant_id,
        old.role,
        old.tier,
    );
    if old.system && !caller.0.system {
        return Err(Error::Forbidden(rbac::SYSTEM_DENIAL.to_string()));
    }
    if old.system {
        replacement = replacement.system();
    }
    replacement.rotated_from = Some(old.id);
    match state
        .store
        .rotate_api_key(caller.tenant(), id, &replacement)
        .await?
    {
        KeyChange::Done => {
            state.keys.clear();
            tracing::info!(old_key_id = %id, key_id = %replacement.key.id, "api key rotated");
            Ok((StatusCode::CREATED, Json(replacement.into())))
        }
        KeyChange::AlreadyRevoked => Err(Error::Conflict(json!(format!(
            "API key {id} is already revoked — cannot rotate"
        )))),
        KeyChange::NotFound => Err(Error::NotFound(format!("API key {id} not found"))),
    }
}

/// A system administrator's key is revoked only by a system administrator: a tenant admin of the same
/// tenant must not lock the operator out.
async fn guard_system_key(state: &AppState, caller: &Caller, id: uuid::Uuid) -> Result<(), Error> {
    let target = state.store.get_api_key(caller.tenant(), id).await?;
    if target.is_some_and(|key| key.system) && !caller.0.system {
        return Err(Error::Forbidden(rbac::SYSTEM_DENIAL.to_string()));
    }
    Ok(())
}
