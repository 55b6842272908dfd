//! `/api/v1/hooks…` (docs/api.md §1.2, §6): register, list and deactivate webhooks, read their deliveries and
//! dead letters, replay one dead letter, put every dead letter back in the outbox (system administrators).

use super::error::{invalid_body, Error, ErrorBody, Invalid};
use super::extract::{ApiJson, ApiQuery, Caller, PathId};
use super::paging::{page, PageParams};
use super::AppState;
use crate::timestamp::Timestamp;
use crate::webhooks::attempt::Outcome;
use crate::webhooks::ssrf::Blocked;
use crate::webhooks::store::Deactivation;
use crate::webhooks::{self, DeadLetter, Delivery, DeliveryStatus, Webhook, WebhookCreate};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register, list))
        .routes(routes!(deactivate))
        .routes(routes!(deliveries))
        .routes(routes!(dead_letters))
        .routes(routes!(replay))
        .routes(routes!(retry_all))
}

#[utoipa::path(post, path = "/hooks", tag = "webhooks", request_body = WebhookCreate,
    responses((status = 201, description = "Registered", body = Webhook),
              (status = 422, description = "Bad scheme, internal destination, unknown event or short secret", body = ErrorBody)))]
async fn register(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<WebhookCreate>,
) -> Result<(StatusCode, Json<Webhook>), Error> {
    let registration = webhooks::check(request).map_err(invalid_body)?;
    match state.webhooks.guard.destinations(&registration.url).await {
        // A name that does not resolve yet is accepted (as the reference does); every delivery checks again.
        Ok(_) | Err(Blocked::Unresolvable(..)) => {}
        Err(blocked) => {
            return Err(Error::validation(Invalid {
                input: json!(registration.url.as_str()),
                ..Invalid::new(
                    "value_error",
                    vec![json!("body"), json!("url")],
                    blocked.to_string(),
                )
            }))
        }
    }
    let (webhook, secret) = registration.into_webhook(caller.tenant(), Timestamp::now());
    state.store.insert_webhook(&webhook, &secret).await?;
    tracing::info!(webhook_id = %webhook.id, url = %webhook.url, "webhook registered");
    Ok((StatusCode::CREATED, Json(webhook)))
}

#[utoipa::path(get, path = "/hooks", tag = "webhooks",
    responses((status = 200, description = "The tenant's hooks, inactive ones included, oldest first", body = Vec<Webhook>)))]
async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<Webhook>>, Error> {
    Ok(Json(state.store.list_webhooks(caller.tenant()).await?))
}

#[utoipa::path(delete, path = "/hooks/{webhook_id}", tag = "webhooks",
    params(("webhook_id" = Uuid, Path, description = "Webhook id")),
    responses((status = 204, description = "Deactivated"), (status = 404, description = "Not found", body = ErrorBody),
              (status = 409, description = "Already inactive", body = ErrorBody)))]
async fn deactivate(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<StatusCode, Error> {
    match state
        .store
        .deactivate_webhook(caller.tenant(), id, Timestamp::now())
        .await?
    {
        Deactivation::Done => {
            tracing::info!(webhook_id = %id, "webhook deactivated");
            Ok(StatusCode::NO_CONTENT)
        }
        Deactivation::AlreadyInactive => Err(Error::Conflict(json!(format!(
            "Webhook {id} is already inactive"
        )))),
        Deactivation::NotFound => Err(webhook_not_found(id)),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct DeliveryParams {
    #[param(value_type = Option<DeliveryStatus>)]
    status: Option<String>,
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    #[param(minimum = 0)]
    offset: Option<i64>,
}

#[utoipa::path(get, path = "/hooks/{webhook_id}/deliveries", tag = "webhooks",
    params(("webhook_id" = Uuid, Path, description = "Webhook id"), DeliveryParams),
    responses((status = 200, description = "Newest first", body = Vec<Delivery>), (status = 404, description = "Not found", body = ErrorBody),
              (status = 422, description = "Invalid request", body = ErrorBody)))]
async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    ApiQuery(params): ApiQuery<DeliveryParams>,
) -> Result<Json<Vec<Delivery>>, Error> {
    let page = page(params.limit, params.offset, None)?;
    // A value that is not a status, the empty one included, is 422 like any other typed query value.
    let status = match params.status {
        Some(text) => Some(DeliveryStatus::parse(&text).ok_or_else(|| {
            Error::validation(Invalid::query(
                "status",
                "enum",
                "Input should be 'pending', 'delivered', 'failed' or 'dead_letter'",
                &text,
            ))
        })?),
        None => None,
    };
    if state
        .store
        .get_webhook(caller.tenant(), id)
        .await?
        .is_none()
    {
        return Err(webhook_not_found(id));
    }
    Ok(Json(
        state
            .store
            .list_deliveries(caller.tenant(), id, status, page)
            .await?,
    ))
}

#[utoipa::path(get, path = "/hooks/dlq", tag = "webhooks", params(PageParams),
    responses((status = 200, description = "The tenant's dead letters, most recently failed first", body = Vec<DeadLetter>),
              (status = 422, description = "Invalid request", body = ErrorBody)))]
async fn dead_letters(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<Json<Vec<DeadLetter>>, Error> {
    let dead = state
        .store
        .list_dead_letters(caller.tenant(), params.page()?)
        .await?;
    Ok(Json(dead.into_iter().map(DeadLetter::from).collect()))
}

#[derive(Serialize, ToSchema)]
struct Replayed {
    delivery_id: uuid::Uuid,
    replayed: bool,
    /// Whether this attempt reached the receiver; when not, the delivery is retried on the schedule.
    delivered: bool,
    last_error: Option<String>,
}

#[utoipa::path(post, path = "/hooks/dlq/{delivery_id}/replay", tag = "webhooks",
    params(("delivery_id" = Uuid, Path, description = "Delivery id")),
    responses((status = 200, description = "Attempted once now, its count restarted", body = Replayed),
              (status = 404, description = "No such dead letter of an active hook", body = ErrorBody)))]
async fn replay(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Json<Replayed>, Error> {
    let now = Timestamp::now();
    let taken = state
        .store
        .take_dead_letter(caller.tenant(), id, now, state.webhooks.lease_until(now))
        .await?
        .ok_or_else(|| Error::NotFound(format!("Dead letter {id} not found")))?;
    let outcome = state.webhooks.deliver(state.store.as_ref(), &taken).await?;
    let last_error = match &outcome {
        Outcome::Delivered { .. } => None,
        Outcome::Gone { status } => {
            Some(format!("HTTP {status}: receiver gone; webhook deactivated"))
        }
        Outcome::Failed { error, .. } => Some(error.clone()),
    };
    Ok(Json(Replayed {
        delivery_id: id,
        replayed: true,
        delivered: last_error.is_none(),
        last_error,
    }))
}

#[derive(Serialize, ToSchema)]
struct RetryAll {
    /// Dead letters put back in the outbox (every tenant's, of active hooks).
    retried: i64,
    /// Always 0: the delivery worker sends them from the outbox, on the retry schedule from its start.
    succeeded: i64,
    failed: i64,
}

#[utoipa::path(post, path = "/hooks/dlq/retry-all", tag = "webhooks",
    responses((status = 200, description = "Every dead letter is pending again", body = RetryAll),
              (status = 403, description = "Not a system administrator", body = ErrorBody)))]
async fn retry_all(State(state): State<AppState>) -> Result<Json<RetryAll>, Error> {
    let retried = state.store.requeue_dead_letters(Timestamp::now()).await?;
    tracing::info!(retried, "dead letters put back in the webhook outbox");
    state.store.deliveries_waiting().notify_one();
    Ok(Json(RetryAll {
        retried,
        succeeded: 0,
        failed: 0,
    }))
}

fn webhook_not_found(id: uuid::Uuid) -> Error {
    Error::NotFound(format!("Webhook {id} not found"))
}
