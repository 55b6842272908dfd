//! `/api/v1/trusted-endpoints`: a tenant's own trusted endpoints (docs/evaluator.md "Gate before comparison").
//! Reading, adding and removing all need `writer` (the trust list decides what counts as evidence).

use super::error::{Error, ErrorBody, Invalid};
use super::extract::{ApiJson, Caller, PathId};
use super::AppState;
use crate::rules::TrustedEndpoint;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, add))
        .routes(routes!(remove))
}

#[derive(Deserialize, ToSchema)]
struct NewEndpoint {
    /// `scheme://host[:port]/path`: `{name}` matches one segment, a last `{name:path}` the rest, a leading
    /// `*.` any subdomain. (Bracketed IPv6 hosts are accepted too; the pattern shows names and IPv4 only.)
    #[schema(
        pattern = "^[Hh][Tt][Tt][Pp][Ss]?://((\\*\\.)?([A-Za-z0-9_-]+\\.)*[A-Za-z_][A-Za-z0-9_-]*|((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9]))(:[0-9]{1,4})?(/([^/?#{}\\x00-\\x20\\x7f-\\x9f]*|\\{[^/?#{}:\\x00-\\x20\\x7f-\\x9f]+\\}))*(/\\{[^/?#{}:\\x00-\\x20\\x7f-\\x9f]*:path\\})?$"
    )]
    url: String,
    #[serde(default)]
    methods: Vec<String>,
}

#[utoipa::path(get, path = "/trusted-endpoints", tag = "trust",
    responses((status = 200, description = "OK", body = Vec<TrustedEndpoint>)))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<TrustedEndpoint>>, Error> {
    Ok(Json(
        state.store.list_trusted_endpoints(caller.tenant()).await?,
    ))
}

#[utoipa::path(post, path = "/trusted-endpoints", tag = "trust", request_body = NewEndpoint,
    responses((status = 201, description = "Created", body = TrustedEndpoint), (status = 422, description = "Not a usable URL template", body = ErrorBody)))]
async fn add(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<NewEndpoint>,
) -> Result<(StatusCode, Json<TrustedEndpoint>), Error> {
    let endpoint = TrustedEndpoint::new(&request.url, &request.methods).map_err(|error| {
        Error::validation(Invalid {
            input: json!(request.url),
            ..Invalid::new(
                "value_error",
                vec![json!("body"), json!("url")],
                error.reason,
            )
        })
    })?;
    state
        .store
        .insert_trusted_endpoint(caller.tenant(), &endpoint)
        .await?;
    tracing::info!(tenant = caller.tenant(), url = %endpoint.url, "trusted endpoint added");
    Ok((StatusCode::CREATED, Json(endpoint)))
}

#[utoipa::path(delete, path = "/trusted-endpoints/{endpoint_id}", tag = "trust", params(("endpoint_id" = Uuid, Path, description = "Trusted endpoint id")),
    responses((status = 204, description = "Removed"), (status = 404, description = "Not found", body = ErrorBody)))]
async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<StatusCode, Error> {
    if state
        .store
        .delete_trusted_endpoint(caller.tenant(), id)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Error::NotFound(format!("Trusted endpoint {id} not found")))
    }
}
