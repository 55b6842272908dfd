//! `/api/v1/tenants…` (docs/api.md §1.4): for system administrators only (docs/api.md decision 14; the RBAC gate refuses every
//! other key), who also make a tenant's keys with `POST /keys {"tenant_id": ...}`. A tenant's own admin
//! manages its keys and objects, never another tenant or the list of tenants.

use super::error::{body_problems, Error, ErrorBody};
use super::extract::{ApiJson, TenantPath};
use super::keys::KeyView;
use super::AppState;
use crate::auth::tenants::{self, Tenant, TenantChanges, TenantCreate, TenantWrite};
use crate::timestamp::Timestamp;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(fetch, update, delete))
        .routes(routes!(keys))
}

fn not_found(id: &str) -> Error {
    Error::NotFound(format!("Tenant {id} not found"))
}

fn name_taken(name: &str) -> Error {
    Error::Conflict(json!(format!("Tenant '{name}' already exists")))
}

#[utoipa::path(post, path = "/tenants", tag = "tenants", request_body = TenantCreate,
    responses((status = 201, description = "Created", body = Tenant), (status = 409, description = "A live tenant has that name", body = ErrorBody), (status = 422, description = "Invalid request", body = ErrorBody)))]
async fn create(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<TenantCreate>,
) -> Result<(StatusCode, Json<Tenant>), Error> {
    body_problems(tenants::check(
        Some(&request.name),
        [
            ("handoffs_per_day", Some(request.handoffs_per_day)),
            ("max_api_keys", Some(request.max_api_keys)),
        ],
    ))?;
    let tenant = Tenant::new(request, Timestamp::now());
    match state.store.insert_tenant(&tenant).await? {
        TenantWrite::Done => {
            tracing::info!(tenant_id = %tenant.id, name = %tenant.name, "tenant created");
            Ok((StatusCode::CREATED, Json(tenant)))
        }
        TenantWrite::NameTaken => Err(name_taken(&tenant.name)),
        TenantWrite::NotFound => Err(not_found(&tenant.id)),
    }
}

#[utoipa::path(get, path = "/tenants", tag = "tenants",
    responses((status = 200, description = "Live tenants, newest first", body = Vec<Tenant>)))]
async fn list(State(state): State<AppState>) -> Result<Json<Vec<Tenant>>, Error> {
    Ok(Json(state.store.list_tenants().await?))
}

#[utoipa::path(get, path = "/tenants/{tenant_id}", tag = "tenants", params(("tenant_id" = String, Path, description = "Tenant id (`default` for the seeded one)")),
    responses((status = 200, description = "OK", body = Tenant), (status = 404, description = "Not found", body = ErrorBody)))]
async fn fetch(
    State(state): State<AppState>,
    TenantPath(id): TenantPath,
) -> Result<Json<Tenant>, Error> {
    let tenant = state.store.get_tenant(&id).await?;
    tenant.map(Json).ok_or_else(|| not_found(&id))
}

#[utoipa::path(patch, path = "/tenants/{tenant_id}", tag = "tenants", params(("tenant_id" = String, Path, description = "Tenant id (`default` for the seeded one)")), request_body = TenantChanges,
    responses((status = 200, description = "OK", body = Tenant), (status = 404, description = "Not found", body = ErrorBody), (status = 409, description = "Conflict", body = ErrorBody), (status = 422, description = "Invalid request", body = ErrorBody)))]
async fn update(
    State(state): State<AppState>,
    TenantPath(id): TenantPath,
    ApiJson(changes): ApiJson<TenantChanges>,
) -> Result<Json<Tenant>, Error> {
    body_problems(tenants::check(
        changes.name.as_deref(),
        [
            ("handoffs_per_day", changes.handoffs_per_day),
            ("max_api_keys", changes.max_api_keys),
        ],
    ))?;
    let changes = changes.trimmed();
    match state
        .store
        .update_tenant(&id, &changes, Timestamp::now())
        .await?
    {
        Ok(tenant) => Ok(Json(tenant)),
        Err(TenantWrite::NameTaken) => Err(name_taken(changes.name.as_deref().unwrap_or_default())),
        Err(TenantWrite::NotFound | TenantWrite::Done) => Err(not_found(&id)),
    }
}

#[utoipa::path(delete, path = "/tenants/{tenant_id}", tag = "tenants", params(("tenant_id" = String, Path, description = "Tenant id (`default` for the seeded one)")),
    responses((status = 204, description = "Soft-deleted"), (status = 404, description = "Not found", body = ErrorBody)))]
async fn delete(
    State(state): State<AppState>,
    TenantPath(id): TenantPath,
) -> Result<StatusCode, Error> {
    match state.store.delete_tenant(&id, Timestamp::now()).await? {
        TenantWrite::Done => {
            tracing::info!(tenant_id = %id, "tenant deleted");
            Ok(StatusCode::NO_CONTENT)
        }
        TenantWrite::NotFound | TenantWrite::NameTaken => Err(not_found(&id)),
    }
}

/// The tenant's keys, newest first, revoked ones included.
#[utoipa::path(get, path = "/tenants/{tenant_id}/keys", tag = "tenants", params(("tenant_id" = String, Path, description = "Tenant id (`default` for the seeded one)")),
    responses((status = 200, description = "OK", body = Vec<KeyView>), (status = 404, description = "Not found", body = ErrorBody)))]
async fn keys(
    State(state): State<AppState>,
    TenantPath(id): TenantPath,
) -> Result<Json<Vec<KeyView>>, Error> {
    if state.store.get_tenant(&id).await?.is_none() {
        return Err(not_found(&id));
    }
    let keys = state.store.list_api_keys(&id).await?;
    Ok(Json(keys.into_iter().map(KeyView::from).collect()))
}
