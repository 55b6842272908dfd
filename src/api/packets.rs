//! `/api/v1/packets…`: the single-packet routes of docs/api.md §1.1.

use super::error::{Error, ErrorBody, Invalid};
use super::extract::{non_empty, ApiJson, ApiQuery, Caller, PathId};
use super::metrics::ClaimOutcome;
use super::paging::{page, PageParams};
use super::AppState;
use crate::packets::history::PacketEvent;
use crate::packets::listing::{PacketPage, PacketQuery, SearchQuery, VerificationFilter};
use crate::packets::model::{Claimant, HumanResponse, Packet, PacketCreate, PacketUpdate};
use crate::packets::{self, Admitted, CommandError};
use crate::paging::Page;
use crate::timestamp::Timestamp;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(awaiting))
        .routes(routes!(search))
        .routes(routes!(fetch, update, delete))
        .routes(routes!(claim))
        .routes(routes!(respond))
        .routes(routes!(verify))
        .routes(routes!(history))
        .routes(routes!(chain))
}

#[derive(Serialize, ToSchema)]
pub(super) struct PacketList {
    packets: Vec<Packet>,
    total: i64,
    limit: i64,
    offset: i64,
    next_cursor: Option<String>,
}

impl PacketList {
    fn new(found: PacketPage, page: Page) -> Self {
        let next_cursor = found.next_cursor().map(|cursor| cursor.encode());
        Self {
            packets: found.packets,
            total: found.total,
            limit: page.limit,
            offset: page.offset,
            next_cursor,
        }
    }
}

#[derive(Serialize, ToSchema)]
struct History {
    packet_id: Uuid,
    events: Vec<PacketEvent>,
}

#[utoipa::path(post, path = "/packets", tag = "packets", request_body = PacketCreate,
    responses((status = 201, description = "Created", body = Packet),
        (status = 413, description = "Body larger than the key's tier allows", body = ErrorBody),
        (status = 422, description = "Invalid packet, unknown schema or context refused by it", body = ErrorBody),
        (status = 429, description = "Rate limit or daily create cap reached", body = ErrorBody)))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<PacketCreate>,
) -> Result<(StatusCode, Json<Packet>), Error> {
    let store = state.store.as_ref();
    let admitted = admit(&state, &caller, request).await?;
    packets::spend_daily_create(&state.limiter, store, &caller.0).await?;
    let packet = packets::create_packet(store, caller.tenant(), admitted).await?;
    state.metrics.packet_created(caller.tenant());
    Ok((StatusCode::CREATED, Json(packet)))
}

/// Admits a create, a chain or a batch item (`packets::admit`), counting its verdict, refusals included.
pub(super) async fn admit(
    state: &AppState,
    caller: &Caller,
    request: PacketCreate,
) -> Result<Admitted, CommandError> {
    let evaluator = super::evaluations::evaluator(state, caller.tenant());
    let admitted = packets::admit(state.store.as_ref(), &state.schemas, &evaluator, request).await;
    match &admitted {
        Ok(admitted) => {
            if let Some(verification) = admitted.verification() {
                state.metrics.verified_handoff(verification);
            }
        }
        Err(CommandError::Rejected(verification)) => state.metrics.verified_handoff(verification),
        Err(_) => {}
    }
    admitted
}

#[utoipa::path(post, path = "/packets/{packet_id}/chain", tag = "packets", params(("packet_id" = Uuid, Path, description = "Packet id")), request_body = PacketCreate,
    responses((status = 201, description = "The child packet", body = Packet),
        (status = 404, description = "No such parent", body = ErrorBody), (status = 422, description = "Invalid packet", body = ErrorBody)))]
async fn chain(
    State(state): State<AppState>,
    caller: Caller,
    PathId(parent_id): PathId,
    ApiJson(request): ApiJson<PacketCreate>,
) -> Result<(StatusCode, Json<Packet>), Error> {
    let store = state.store.as_ref();
    let admitted = admit(&state, &caller, request).await?;
    let child = packets::chain_packet(store, caller.tenant(), parent_id, admitted).await?;
    Ok((StatusCode::CREATED, Json(child)))
}

#[utoipa::path(get, path = "/packets/{packet_id}", tag = "packets", params(("packet_id" = Uuid, Path, description = "Packet id")),
    responses((status = 200, description = "OK", body = Packet), (status = 404, description = "Not found", body = ErrorBody), (status = 410, description = "Expired", body = ErrorBody)))]
async fn fetch(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Json<Packet>, Error> {
    Ok(Json(
        packets::get_packet(state.store.as_ref(), caller.tenant(), id).await?,
    ))
}

#[utoipa::path(patch, path = "/packets/{packet_id}", tag = "packets", params(("packet_id" = Uuid, Path, description = "Packet id")), request_body = PacketUpdate,
    responses((status = 200, description = "OK", body = Packet), (status = 400, description = "Illegal transition", body = ErrorBody),
        (status = 404, description = "Not found", body = ErrorBody), (status = 409, description = "Awaiting a human response", body = ErrorBody)))]
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    ApiJson(update): ApiJson<PacketUpdate>,
) -> Result<Json<Packet>, Error> {
    Ok(Json(
        packets::update_packet(state.store.as_ref(), caller.tenant(), id, &update).await?,
    ))
}

#[utoipa::path(delete, path = "/packets/{packet_id}", tag = "packets", params(("packet_id" = Uuid, Path, description = "Packet id")),
    responses((status = 204, description = "Expired"), (status = 404, description = "Not found", body = ErrorBody),
        (status = 409, description = "Already expired", body = ErrorBody)))]
async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<StatusCode, Error> {
    packets::delete_packet(state.store.as_ref(), caller.tenant(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/packets/{packet_id}/claim", tag = "packets", params(("packet_id" = Uuid, Path, description = "Packet id")), request_body = Claimant,
    responses((status = 200, description = "OK", body = Packet), (status = 404, description = "Not found", body = ErrorBody), (status = 409, description = "Already claimed, or awaiting a human", body = ErrorBody),
        (status = 410, description = "Expired", body = ErrorBody)))]
async fn claim(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    ApiJson(claimant): ApiJson<Claimant>,
) -> Result<Json<Packet>, Error> {
    let claimed = packets::claim_packet(state.store.as_ref(), caller.tenant(), id, &claimant).await;
    match &claimed {
        Ok(_) => state.metrics.claim(ClaimOutcome::Won),
        Err(CommandError::Refused(_)) => state.metrics.claim(ClaimOutcome::Refused),
        Err(_) => {}
    }
    Ok(Json(claimed?))
}

#[utoipa::path(post, path = "/packets/{packet_id}/respond", tag = "packets", params(("packet_id" = Uuid, Path, description = "Packet id")), request_body = HumanResponse,
    responses((status = 200, description = "OK", body = Packet), (status = 400, description = "No checkpoint waiting", body = ErrorBody), (status = 404, description = "Not found", body = ErrorBody),
        (status = 409, description = "The packet is not awaiting a human", body = ErrorBody)))]
async fn respond(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    ApiJson(answer): ApiJson<HumanResponse>,
) -> Result<Json<Packet>, Error> {
    Ok(Json(
        packets::respond_to_checkpoint(state.store.as_ref(), caller.tenant(), id, &answer).await?,
    ))
}

/// Re-verification (docs/api.md decision 12): the packet's claims evaluated again against the evidence as it is
/// now; the packet carries the new verdict (its status and the policy applied at creation stay) and its history
/// both.
#[utoipa::path(post, path = "/packets/{packet_id}/verify", tag = "packets", params(("packet_id" = Uuid, Path, description = "Packet id")),
    responses((status = 200, description = "The packet with its new verdict", body = Packet), (status = 400, description = "The packet has no claims", body = ErrorBody),
        (status = 404, description = "Not found", body = ErrorBody)))]
async fn verify(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Json<Packet>, Error> {
    let evaluator = super::evaluations::evaluator(&state, caller.tenant());
    Ok(Json(
        packets::reverify_packet(state.store.as_ref(), &evaluator, id).await?,
    ))
}

#[utoipa::path(get, path = "/packets/{packet_id}/history", tag = "packets", params(("packet_id" = Uuid, Path, description = "Packet id")),
    responses((status = 200, description = "OK", body = History), (status = 404, description = "Not found", body = ErrorBody)))]
async fn history(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Json<History>, Error> {
    packets::get_packet(state.store.as_ref(), caller.tenant(), id).await?;
    let events = state.store.packet_history(caller.tenant(), id).await?;
    Ok(Json(History {
        packet_id: id,
        events,
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListParams {
    status: Option<String>,
    source_agent: Option<String>,
    target_agent: Option<String>,
    tags: Option<String>,
    priority: Option<String>,
    #[param(value_type = Option<String>, format = DateTime)]
    created_after: Option<String>,
    #[param(value_type = Option<String>, format = DateTime)]
    created_before: Option<String>,
    /// The outcome of the packet's claims, or `none` for packets created without claims.
    #[param(inline)]
    verification: Option<VerificationFilter>,
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    #[param(minimum = 0)]
    offset: Option<i64>,
    cursor: Option<String>,
}

/// Items a comma-separated filter may list (SQLite refuses statements past 999 parameters).
const MAX_LISTED: usize = 50;

fn comma_list(value: Option<String>) -> Vec<String> {
    non_empty(value)
        .map(|text| {
            text.split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn datetime_param(
    field: &str,
    value: Option<String>,
) -> Result<Option<Timestamp>, Error> {
    match value {
        None => Ok(None),
        Some(text) => Timestamp::parse(&text).map(Some).ok_or_else(|| {
            Error::validation(Invalid::query(
                field,
                "datetime_from_date_parsing",
                "Input should be a valid datetime",
                &text,
            ))
        }),
    }
}

#[utoipa::path(get, path = "/packets", tag = "packets", params(ListParams),
    responses((status = 200, description = "Newest first; `next_cursor` continues", body = PacketList),
        (status = 400, description = "Invalid cursor", body = ErrorBody), (status = 422, description = "Invalid request", body = ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<PacketList>, Error> {
    let page = page(params.limit, params.offset, params.cursor)?;
    let (statuses, tags) = (comma_list(params.status), comma_list(params.tags));
    super::storable::check_list_len("status", &statuses, MAX_LISTED)?;
    super::storable::check_list_len("tags", &tags, MAX_LISTED)?;
    let query = PacketQuery {
        statuses,
        source_agent: non_empty(params.source_agent),
        target_agent: non_empty(params.target_agent),
        tags,
        priority: non_empty(params.priority),
        created_after: datetime_param("created_after", params.created_after)?,
        created_before: datetime_param("created_before", params.created_before)?,
        verification: params.verification,
        parent: None,
        page,
    };
    let found = state.store.list_packets(caller.tenant(), &query).await?;
    Ok(Json(PacketList::new(found, page)))
}

#[utoipa::path(get, path = "/packets/awaiting", tag = "packets", params(PageParams),
    responses((status = 200, description = "Packets waiting for a human", body = PacketList), (status = 422, description = "Invalid request", body = ErrorBody)))]
async fn awaiting(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<Json<PacketList>, Error> {
    let page = params.page()?;
    let found = state.store.list_awaiting(caller.tenant(), page).await?;
    Ok(Json(PacketList::new(found, page)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct SearchParams {
    #[param(required = true, min_length = 2)]
    q: Option<String>,
    status: Option<String>,
    priority: Option<String>,
    /// The outcome of the packet's claims, or `none` for packets created without claims.
    #[param(inline)]
    verification: Option<VerificationFilter>,
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    #[param(minimum = 0)]
    offset: Option<i64>,
}

/// Full-text search (docs/api.md decision 8): `q` is plain text, the most relevant packets come first, and `total`
/// counts every hit.
#[utoipa::path(get, path = "/packets/search", tag = "packets", params(SearchParams),
    responses((status = 200, description = "Most relevant first; `total` counts every hit", body = PacketList), (status = 422, description = "Invalid request", body = ErrorBody)))]
async fn search(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<SearchParams>,
) -> Result<Json<PacketList>, Error> {
    let text = match params.q {
        None => {
            return Err(Error::validation(Invalid::new(
                "missing",
                vec![serde_json::json!("query"), serde_json::json!("q")],
                "Field required",
            )))
        }
        Some(text) if text.chars().count() < 2 => {
            return Err(Error::validation(Invalid::query(
                "q",
                "string_too_short",
                "String should have at least 2 characters",
                &text,
            )))
        }
        Some(text) => text,
    };
    let page = page(params.limit, params.offset, None)?;
    let query = SearchQuery {
        text,
        status: non_empty(params.status),
        priority: non_empty(params.priority),
        verification: params.verification,
        page,
    };
    let found = state.store.search_packets(caller.tenant(), &query).await?;
    Ok(Json(PacketList::new(found, page)))
}
