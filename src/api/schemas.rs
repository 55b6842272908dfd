//! `/api/v1/schemas…` (docs/api.md §1.5): register, list and read the tenant's JSON Schemas. There is no update
//! or delete; a new version is a new registration.

use super::error::{body_problems, Error, ErrorBody};
use super::extract::{ApiJson, ApiQuery, Caller, PathId};
use super::paging::PageParams;
use super::AppState;
use crate::packets::schemas::{self, Schema, SchemaCreate};
use crate::timestamp::Timestamp;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(fetch))
}

#[derive(Serialize, ToSchema)]
struct SchemaList {
    schemas: Vec<Schema>,
    total: i64,
    limit: i64,
    offset: i64,
}

#[utoipa::path(post, path = "/schemas", tag = "schemas", request_body = SchemaCreate,
    responses((status = 201, description = "Created", body = Schema), (status = 422, description = "Bad name or version, or a document that is not a usable JSON Schema", body = ErrorBody)))]
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

#[utoipa::path(get, path = "/schemas", tag = "schemas", params(PageParams),
    responses((status = 200, description = "Newest first", body = SchemaList), (status = 422, description = "Invalid request", body = ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<Json<SchemaList>, Error> {
    let page = params.page()?;
    let (schemas, total) = state.store.list_schemas(caller.tenant(), page).await?;
    Ok(Json(SchemaList {
        schemas,
        total,
        limit: page.limit,
        offset: page.offset,
    }))
}

#[utoipa::path(get, path = "/schemas/{schema_id}", tag = "schemas", params(("schema_id" = Uuid, Path, description = "Schema id")),
    responses((status = 200, description = "OK", body = Schema), (status = 404, description = "Not found", body = ErrorBody)))]
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
