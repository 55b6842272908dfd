//! `GET /api/v1/audit` (docs/api.md §1.6, docs/api.md §8.3): the tenant's packet history as an audit log, newest first.

use super::error::{Error, ErrorBody, Invalid};
use super::extract::{non_empty, ApiQuery, Caller};
use super::packets::datetime_param;
use super::paging::page;
use super::AppState;
use crate::packets::history::{AuditEntry, AuditQuery};
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct AuditParams {
    actor: Option<String>,
    action: Option<String>,
    #[param(value_type = Option<String>, format = Uuid)]
    packet_id: Option<String>,
    #[param(value_type = Option<String>, format = DateTime)]
    created_after: Option<String>,
    #[param(value_type = Option<String>, format = DateTime)]
    created_before: Option<String>,
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    #[param(minimum = 0)]
    offset: Option<i64>,
}

#[derive(Serialize, ToSchema)]
struct AuditLog {
    entries: Vec<AuditEntry>,
    total: i64,
    limit: i64,
    offset: i64,
}

#[utoipa::path(get, path = "/audit", tag = "audit", params(AuditParams),
    responses((status = 200, description = "Newest first; `total` counts every match", body = AuditLog), (status = 422, description = "Invalid request", body = ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<AuditParams>,
) -> Result<Json<AuditLog>, Error> {
    let page = page(params.limit, params.offset, None)?;
    let packet_id = match params.packet_id {
        None => None,
        Some(text) => Some(Uuid::parse_str(&text).map_err(|error| {
            Error::validation(Invalid {
                input: json!(text),
                ..Invalid::new(
                    "uuid_parsing",
                    vec![json!("query"), json!("packet_id")],
                    format!("Input should be a valid UUID, {error}"),
                )
            })
        })?),
    };
    let query = AuditQuery {
        actor: non_empty(params.actor),
        action: non_empty(params.action),
        packet_id,
        created_after: datetime_param("created_after", params.created_after)?,
        created_before: datetime_param("created_before", params.created_before)?,
        page,
    };
    let (events, total) = state.store.list_audit(caller.tenant(), &query).await?;
    Ok(Json(AuditLog {
        entries: events.into_iter().map(AuditEntry::from).collect(),
        total,
        limit: page.limit,
        offset: page.offset,
    }))
}
