//! `/api/v1/tenants…` (spec §1.4): admin only, and global — an admin key of any tenant manages all tenants,
//! as in the reference (tenant admins are the platform's operators; keys for a tenant are made with
//! `POST /keys {"tenant_id": ...}`).

use super::error::{body_problems, Error};
use super::extract::ApiJson;
use super::keys::KeyView;
use super::AppState;
use crate::tenants::{self, Tenant, TenantChanges, TenantCreate, TenantWrite};
use crate::timestamp::Timestamp;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/tenants", get(list).post(create))
        .route(
            "/tenants/{tenant_id}",
            get(fetch).patch(update).delete(delete),
        )
        .route("/tenants/{tenant_id}/keys", get(keys))
}

fn not_found(id: &str) -> Error {
    Error::NotFound(format!("Tenant {id} not found"))
}

fn name_taken(name: &str) -> Error {
    Error::Conflict(json!(format!("Tenant '{name}' already exists")))
}

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

async fn list(State(state): State<AppState>) -> Result<Json<Vec<Tenant>>, Error> {
    Ok(Json(state.store.list_tenants().await?))
}

async fn fetch(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Tenant>, Error> {
    let tenant = state.store.get_tenant(&id).await?;
    tenant.map(Json).ok_or_else(|| not_found(&id))
}

async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(changes): ApiJson<TenantChanges>,
) -> Result<Json<Tenant>, Error> {
    body_problems(tenants::check(
        changes.name.as_deref(),
        [
            ("handoffs_per_day", changes.handoffs_per_day),
            ("max_api_keys", changes.max_api_keys),
        ],
    ))?;
    let mut tenant = state
        .store
        .get_tenant(&id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    tenant.apply(changes, Timestamp::now());
    match state.store.update_tenant(&tenant).await? {
        TenantWrite::Done => Ok(Json(tenant)),
        TenantWrite::NameTaken => Err(name_taken(&tenant.name)),
        TenantWrite::NotFound => Err(not_found(&id)),
    }
}

async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
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
async fn keys(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Vec<KeyView>>, Error> {
    if state.store.get_tenant(&id).await?.is_none() {
        return Err(not_found(&id));
    }
    let keys = state.store.list_api_keys(&id).await?;
    Ok(Json(keys.into_iter().map(KeyView::from).collect()))
}
