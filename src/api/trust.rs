//! `/api/v1/trusted-endpoints`: a tenant's own trusted endpoints (evaluator.md "Gate before comparison").
//! Reading needs `reader`; adding and removing need `writer`.

use super::error::{Error, Invalid};
use super::extract::{ApiJson, Caller, PathId};
use super::AppState;
use crate::rules::TrustedEndpoint;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/trusted-endpoints", get(list).post(add))
        .route("/trusted-endpoints/{endpoint_id}", delete(remove))
}

#[derive(Deserialize)]
struct NewEndpoint {
    url: String,
    #[serde(default)]
    methods: Vec<String>,
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<TrustedEndpoint>>, Error> {
    Ok(Json(
        state.store.list_trusted_endpoints(caller.tenant()).await?,
    ))
}

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
