//! `/api/v1/records…`: evidence records as stored, with their verification status, and the public key
//! that lets anyone verify an exported record offline (docs/interceptor.md "Records API").

use super::error::{Error, ErrorBody, Invalid};
use super::extract::{non_empty, ApiJson, ApiQuery, Caller, PathId};
use super::paging::page;
use super::AppState;
use crate::paging::next_cursor;
use crate::records::har::har_from_records;
use crate::records::import::{self, InvalidImport};
use crate::records::import_schema::{HarDocument, ImportDocument};
use crate::records::{RecordQuery, RecordSummary, SealedRecord};
use crate::rules::TrustList;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, import))
        .routes(routes!(public_key))
        .routes(routes!(ca_certificate))
        .routes(routes!(export))
        .routes(routes!(fetch))
}

#[derive(Serialize, ToSchema)]
struct RecordView {
    #[serde(flatten)]
    sealed: SealedRecord,
    /// Whether the record still hashes to its seal and the seal verifies with this server's key.
    signature_valid: bool,
    /// `valid`, `digest_mismatch`, `bad_signature` or `unknown_key`.
    #[schema(value_type = String)]
    integrity: &'static str,
    /// Whether an evaluation now would use this record as far as trust goes: its endpoint matches one of the
    /// tenant's trusted endpoints or the rules' (or none is configured). `trusted` is the same question
    /// answered when the record was captured.
    trusted_now: bool,
}

/// The key that verifies record seals offline.
#[derive(Serialize, ToSchema)]
struct PublicKey {
    /// `ed25519`.
    #[schema(value_type = String, example = "ed25519")]
    algorithm: &'static str,
    /// The seals' `key_id`.
    key_id: String,
    /// The raw 32-byte public key, standard base64.
    #[schema(format = Byte)]
    public_key: String,
    /// What a seal's signature signs.
    #[schema(value_type = String)]
    signed_message: &'static str,
}

#[utoipa::path(get, path = "/records/public-key", tag = "records",
    responses((status = 200, description = "The Ed25519 key that verifies record seals offline", body = PublicKey)))]
async fn public_key(State(state): State<AppState>) -> Json<PublicKey> {
    Json(PublicKey {
        algorithm: "ed25519",
        key_id: state.record_key.key_id().to_string(),
        public_key: state.record_key.public_key_base64(),
        signed_message: "the 32 bytes of seal.sha256 (SHA-256 of the record's canonical JSON)",
    })
}

/// The MITM CA agents trust for HTTPS through the proxy.
#[utoipa::path(get, path = "/ca.pem", tag = "records",
    responses((status = 200, description = "The proxy's CA certificate (PEM), for agents to trust", content_type = "application/x-pem-file", body = String)))]
async fn ca_certificate(State(state): State<AppState>) -> Result<Response, Error> {
    Ok((
        [(header::CONTENT_TYPE, "application/x-pem-file")],
        state.ca.certificate_pem().to_string(),
    )
        .into_response())
}

#[utoipa::path(get, path = "/records/{record_id}", tag = "records", params(("record_id" = Uuid, Path, description = "Record id")),
    responses((status = 200, description = "The sealed record with `signature_valid` and `integrity`", body = RecordView), (status = 404, description = "Not found", body = ErrorBody)))]
async fn fetch(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Json<RecordView>, Error> {
    // An id the proxy handed out a moment ago may still be on its way to the database.
    let sealed = crate::records::fresh::get_record_fresh(state.store.as_ref(), caller.tenant(), id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("Record {id} not found")))?;
    let integrity = state.record_key.verify(&sealed);
    let trust = TrustList::of_tenant(
        state.store.as_ref(),
        &state.rules.current(),
        caller.tenant(),
    )
    .await?;
    let trusted_now = trust.admits(&sealed.record.method, &sealed.record.url);
    Ok(Json(RecordView {
        sealed,
        signature_valid: integrity.is_valid(),
        integrity: integrity.as_str(),
        trusted_now,
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListParams {
    run_id: Option<String>,
    agent_id: Option<String>,
    action: Option<String>,
    host: Option<String>,
    #[param(minimum = 100, maximum = 599)]
    status: Option<u16>,
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct RecordList {
    records: Vec<RecordSummary>,
    limit: i64,
    next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/records", tag = "records", params(ListParams),
    responses((status = 200, description = "Record summaries, newest first", body = RecordList), (status = 400, description = "Invalid cursor", body = ErrorBody), (status = 422, description = "Invalid request", body = ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<RecordList>, Error> {
    let page = page(params.limit, None, params.cursor)?;
    if let Some(status) = params.status.filter(|status| !(100..=599).contains(status)) {
        return Err(Error::validation(Invalid::query(
            "status",
            "less_than_equal",
            "Input should be an HTTP status between 100 and 599",
            &status.to_string(),
        )));
    }
    let query = RecordQuery {
        run_id: non_empty(params.run_id),
        agent_id: non_empty(params.agent_id),
        action: non_empty(params.action),
        host: non_empty(params.host).map(|host| host.to_ascii_lowercase()),
        status: params.status,
        page,
    };
    let (records, has_more) = state.store.list_records(caller.tenant(), &query).await?;
    let next_cursor = next_cursor(&records, has_more, RecordSummary::position);
    Ok(Json(RecordList {
        records,
        limit: page.limit,
        next_cursor: next_cursor.map(|cursor| cursor.encode()),
    }))
}

#[derive(Serialize, ToSchema)]
struct Imported {
    imported: usize,
    /// The stored records' ids, in the order they arrived.
    ids: Vec<Uuid>,
    /// Ids already stored (a re-import of records that kept their ids): left as they were.
    already_stored: Vec<Uuid>,
}

#[utoipa::path(post, path = "/records", tag = "records", request_body = ImportDocument,
    responses((status = 201, description = "Created", body = Imported), (status = 422, description = "Invalid request", body = ErrorBody)))]
async fn import(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(payload): ApiJson<Value>,
) -> Result<(StatusCode, Json<Imported>), Error> {
    let records = import::parse_document(&payload, caller.tenant()).map_err(|error| {
        let loc = match &error {
            InvalidImport::Har(har) => vec![
                json!("body"),
                json!("log"),
                json!("entries"),
                json!(har.entry),
            ],
            InvalidImport::Record { index, .. } => {
                vec![json!("body"), json!("records"), json!(index)]
            }
            InvalidImport::Shape | InvalidImport::TooMany(_) => vec![json!("body")],
        };
        Error::validation(Invalid::new("value_error", loc, error.to_string()))
    })?;
    let import::Imported {
        ids,
        already_stored,
    } = import::into_tenant(
        state.store.as_ref(),
        &state.rules.current(),
        &state.record_key,
        caller.tenant(),
        records,
    )
    .await?;
    tracing::info!(
        tenant = caller.tenant(),
        count = ids.len(),
        "records imported"
    );
    Ok((
        StatusCode::CREATED,
        Json(Imported {
            imported: ids.len(),
            ids,
            already_stored,
        }),
    ))
}

/// Most records one export returns; narrow it with `run_id` for more.
const MAX_EXPORT: i64 = 1_000;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ExportParams {
    #[param(value_type = Option<String>, pattern = "^(har|jsonl)$")]
    format: Option<String>,
    run_id: Option<String>,
}

/// The tenant's records (of one run, when given), oldest first, with bodies and seals: a HAR 1.2 document,
/// or JSON lines of sealed records (`format=jsonl`).
#[utoipa::path(get, path = "/records/export", tag = "records", params(ExportParams),
    responses((status = 200, description = "HAR 1.2 (default) or JSON lines of sealed records",
        content((HarDocument = "application/json"), (String = "application/x-ndjson"))), (status = 422, description = "Invalid request", body = ErrorBody)))]
async fn export(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<ExportParams>,
) -> Result<Response, Error> {
    let format = params.format.as_deref().unwrap_or("har").to_string();
    if format != "har" && format != "jsonl" {
        return Err(Error::validation(Invalid::query(
            "format",
            "enum",
            "Input should be 'har' or 'jsonl'",
            &format,
        )));
    }
    let run_id = non_empty(params.run_id);
    let records = state
        .store
        .export_records(caller.tenant(), run_id.as_deref(), MAX_EXPORT)
        .await?;
    if format == "har" {
        return Ok(Json(har_from_records(&records)).into_response());
    }
    let mut lines = String::new();
    for sealed in &records {
        lines.push_str(
            &serde_json::to_string(sealed).map_err(|error| Error::Internal(error.into()))?,
        );
        lines.push('\n');
    }
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], lines).into_response())
}
