//! `/api/v1/evaluations`: verify an agent's claims against recorded evidence (docs/evaluator.md). Posting needs
//! `agent`; reading needs `reader`.

use super::error::{Error, ErrorBody, Invalid};
use super::extract::{non_empty, ApiJson, ApiQuery, Caller, PathId};
use super::paging::page;
use super::AppState;
use crate::evaluations::{
    run_evaluation, EvaluationError, EvaluationQuery, Evaluator, StoredEvaluation,
};
use crate::paging::next_cursor;
use crate::verify::Outcome;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(fetch))
}

/// The body of `POST /evaluations` (docs: evaluator "Payload"): claims are read one by one, so a malformed
/// claim is an ERROR of its own in the verdict rather than a refused request.
#[derive(ToSchema)]
#[allow(dead_code)]
struct EvaluationRequest {
    /// Scopes evidence found by `action_name` (records tagged with this run); text or a number, at most
    /// 255 characters.
    #[schema(value_type = Option<serde_json::Value>)]
    run_id: Option<String>,
    /// Text or a number; anything else is ignored.
    #[schema(value_type = Option<serde_json::Value>)]
    agent_id: Option<String>,
    /// Each `{action_name, verification_mode, json_path, claimed_value, record_id, …}`.
    #[schema(value_type = Vec<serde_json::Value>, max_items = 1000)]
    claims: Vec<Value>,
}

/// What an evaluation in `tenant` runs with: the store, the record key, the rules in force and the server's
/// capacity (shared with verified packets).
pub(super) fn evaluator<'a>(state: &'a AppState, tenant: &'a str) -> Evaluator<'a> {
    Evaluator {
        store: state.store.as_ref(),
        record_key: state.record_key.clone(),
        rules: state.rules.current(),
        tenant,
        capacity: &state.evaluations,
    }
}

#[utoipa::path(post, path = "/evaluations", tag = "evaluations", request_body = EvaluationRequest,
    responses((status = 201, description = "The verdict: PASS, CAUGHT or ERROR per claim and overall", body = StoredEvaluation), (status = 422, description = "Invalid request", body = ErrorBody)))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(payload): ApiJson<Value>,
) -> Result<(StatusCode, Json<StoredEvaluation>), Error> {
    match run_evaluation(&evaluator(&state, caller.tenant()), &payload).await {
        Ok(evaluation) => {
            tracing::info!(evaluation_id = %evaluation.id, outcome = evaluation.outcome.as_str(), "evaluation stored");
            Ok((StatusCode::CREATED, Json(evaluation)))
        }
        Err(EvaluationError::Malformed(message)) => Err(Error::validation(Invalid::new(
            "value_error",
            vec![json!("body")],
            message,
        ))),
        Err(EvaluationError::Store(error)) => Err(error.into()),
        Err(error @ EvaluationError::Internal(_)) => Err(Error::Internal(error.into())),
    }
}

#[utoipa::path(get, path = "/evaluations/{evaluation_id}", tag = "evaluations", params(("evaluation_id" = Uuid, Path, description = "Evaluation id")),
    responses((status = 200, description = "OK", body = StoredEvaluation), (status = 404, description = "Not found", body = ErrorBody)))]
async fn fetch(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Json<StoredEvaluation>, Error> {
    state
        .store
        .get_evaluation(caller.tenant(), id)
        .await?
        .map(Json)
        .ok_or_else(|| Error::NotFound(format!("Evaluation {id} not found")))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListParams {
    run_id: Option<String>,
    agent_id: Option<String>,
    /// `PASS`, `CAUGHT` or `ERROR` (any case).
    #[param(
        pattern = "^\\s*([Pp][Aa][Ss][Ss]|[Cc][Aa][Uu][Gg][Hh][Tt]|[Ee][Rr][Rr][Oo][Rr])?\\s*$"
    )]
    outcome: Option<String>,
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct EvaluationList {
    evaluations: Vec<StoredEvaluation>,
    limit: i64,
    next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/evaluations", tag = "evaluations", params(ListParams),
    responses((status = 200, description = "Newest first", body = EvaluationList), (status = 400, description = "Bad request", body = ErrorBody), (status = 422, description = "Invalid request", body = ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<EvaluationList>, Error> {
    let page = page(params.limit, None, params.cursor)?;
    let outcome = match non_empty(params.outcome) {
        Some(text) => Some(Outcome::parse(&text).ok_or_else(|| {
            Error::validation(Invalid::query(
                "outcome",
                "enum",
                "Input should be 'PASS', 'CAUGHT' or 'ERROR'",
                &text,
            ))
        })?),
        None => None,
    };
    let query = EvaluationQuery {
        run_id: non_empty(params.run_id),
        agent_id: non_empty(params.agent_id),
        outcome,
        page,
    };
    let (evaluations, has_more) = state
        .store
        .list_evaluations(caller.tenant(), &query)
        .await?;
    let next_cursor = next_cursor(&evaluations, has_more, StoredEvaluation::position);
    Ok(Json(EvaluationList {
        evaluations,
        limit: page.limit,
        next_cursor: next_cursor.map(|cursor| cursor.encode()),
    }))
}
