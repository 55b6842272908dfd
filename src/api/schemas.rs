//! `/api/v1/schemas…` (spec §1.5): register, list and read the tenant's JSON Schemas. There is no update
//! or delete; a new version is a new registration.

use super::error::{body_problems, Error};
use super::extract::{ApiJson, ApiQuery, Caller, PathId};
use super::packets::page_bounds;
use super::AppState;
use crate::schemas::{self, Schema, SchemaCreate};
use crate::timestamp::Timestamp;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/schemas", get(list).post(create))
        .route("/schemas/{schema_id}", get(fetch))
}

#[derive(Deserialize)]
struct PageParams {
    limit: Option<i64>,
    offset: Option<i64>,
}

#[derive(Serialize)]
struct SchemaList {
    schemas: Vec<Schema>,
    total: i64,
    limit: i64,
    offset: i64,
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<SchemaCreate>,
) -> Result<(StatusCode, Json<Schema>), Error> {
    body_problems(schemas::check(&request))?;
    let schema = Schema::new(request, caller.tenant(), Timestamp::now());
    state.store.insert_schema(&schema).await?;
    tracing::info!(schema_id = %schema.id, name = %schema.name, version = schema.version, "schema registered");
    Ok((StatusCode::CREATED, Json(schema)))
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<Json<SchemaList>, Error> {
    let (limit, offset) = page_bounds(params.limit, params.offset)?;
    let (schemas, total) = state
        .store
        .list_schemas(caller.tenant(), limit, offset)
        .await?;
    Ok(Json(SchemaList {
        schemas,
        total,
        limit,
        offset,
    }))
}

async fn fetch(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Json<Schema>, Error> {
    let schema = state.store.get_schema(caller.tenant(), id).await?;
    schema
        .map(Json)
        .ok_or_else(|| Error::NotFound(format!("Schema {id} not found")))
}
