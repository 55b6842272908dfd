//! The evidence pages: the tenant's records by run, agent, host and status, and one record as it was captured
//! (headers as redacted at capture), with its seal checked now, trust then and now, and a HAR download.

use super::html::{badge, body_shown, escape, older_link, page, wire};
use super::session::SignedIn;
use super::DashboardError;
use crate::api::AppState;
use crate::paging::{Cursor, Page};
use crate::records::har::har_from_records;
use crate::records::{Header, RecordQuery, SealedRecord};
use crate::rules::TrustList;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use std::collections::HashSet;
use std::fmt::Write;

/// Bodies up to this size are shown; larger ones are in the HAR download.
const SHOWN_BODY_BYTES: usize = 48 << 10;
/// Bodies over this size start folded.
const FOLDED_BODY_BYTES: usize = 4 << 10;

#[derive(Deserialize, Default)]
pub struct ListFilters {
    #[serde(default)]
    run_id: String,
    #[serde(default)]
    agent_id: String,
    #[serde(default)]
    host: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    cursor: String,
}

fn given(text: &str) -> Option<String> {
    Some(text.trim().to_string()).filter(|text| !text.is_empty())
}

/// `GET /dashboard/records`: the tenant's evidence, newest first.
pub async fn list(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(filters): Query<ListFilters>,
) -> Result<Html<String>, DashboardError> {
    let query = RecordQuery {
        run_id: given(&filters.run_id),
        agent_id: given(&filters.agent_id),
        action: None,
        host: given(&filters.host).map(|host| host.to_ascii_lowercase()),
        status: filters.status.trim().parse().ok(),
        page: Page {
            cursor: Cursor::decode(&filters.cursor),
            ..Page::first(50)
        },
    };
    let (records, has_more) = state.store.list_records(signed_in.tenant(), &query).await?;
    let field = |name: &str, label: &str, value: &str| {
        format!(
            "<label>{label}<input name=\"{name}\" value=\"{}\"></label>",
            escape(value)
        )
    };
    let mut body = format!(
        "<h1>Evidence records</h1><form class=\"filters\" method=\"get\" action=\"/dashboard/records\">{}{}{}{}\
         <button type=\"submit\">Filter</button></form><div class=\"wide\"><table><thead><tr>\
         <th scope=\"col\">Request</th><th scope=\"col\">Status</th><th scope=\"col\">Run · agent · action</th>\
         <th scope=\"col\">Started</th></tr></thead><tbody>",
        field("run_id", "Run", &filters.run_id),
        field("agent_id", "Agent", &filters.agent_id),
        field("host", "Host", &filters.host),
        field("status", "Status", &filters.status),
    );
    for record in &records {
        let _ = write!(
            body,
            "<tr><td><a href=\"/dashboard/records/{id}\">{} {}</a></td><td>{}</td><td>{} · {} · {}</td><td>{}</td></tr>",
            escape(&record.method),
            escape(&record.url),
            record.status.map_or("—".to_string(), |status| status.to_string()),
            escape(record.run_id.as_deref().unwrap_or("—")),
            escape(record.agent_id.as_deref().unwrap_or("—")),
            escape(record.action.as_deref().unwrap_or("—")),
            record.started_at,
            id = record.id,
        );
    }
    body.push_str("</tbody></table></div>");
    if let (true, Some(last)) = (has_more, records.last()) {
        body.push_str(&older_link(
            "/dashboard/records",
            &[
                ("run_id", &filters.run_id),
                ("agent_id", &filters.agent_id),
                ("host", &filters.host),
                ("status", &filters.status),
            ],
            &last.position(),
            "Older records",
        ));
    }
    Ok(Html(page(
        "Evidence records",
        Some(&signed_in.viewer()),
        &body,
    )))
}

/// `GET /dashboard/records/{id}`: one record of the tenant.
pub async fn record(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
) -> Result<Html<String>, DashboardError> {
    let sealed = tenant_record(&state, &signed_in, &id).await?;
    let store = state.store.as_ref();
    let integrity = state.record_key.verify(&sealed);
    let trust = TrustList::of_tenant(store, &state.rules.current(), signed_in.tenant()).await?;
    let record = &sealed.record;
    let yes_no = |value: bool| if value { "yes" } else { "no" };
    let seal = if integrity.is_valid() {
        badge("PASS", "verified now")
    } else {
        badge(
            "CAUGHT",
            &format!("does not verify ({})", integrity.as_str()),
        )
    };
    let timings = &record.timings;
    let mut body = format!(
        "<h1>{} {}</h1><p>Status {} · run {} · agent {} · action {} · provenance {}</p>\
         <p>Seal: {seal} · trusted at capture: {} · trusted now: {}</p>\
         <p>Started {}, first byte {}, ended {}</p>\
         <p><a href=\"/dashboard/records/{id}/har\" download=\"record-{id}.har\">Download as HAR</a></p>",
        escape(&record.method),
        escape(&record.url),
        record.status.map_or("none".to_string(), |status| status.to_string()),
        escape(record.run_id.as_deref().unwrap_or("none")),
        escape(record.agent_id.as_deref().unwrap_or("none")),
        escape(record.action.as_deref().unwrap_or("none")),
        wire(&record.provenance),
        yes_no(record.trusted),
        yes_no(trust.admits(&record.method, &record.url)),
        timings.started_at,
        timings
            .first_byte_at
            .map_or("—".to_string(), |at| at.to_string()),
        timings.ended_at.map_or("—".to_string(), |at| at.to_string()),
    );
    if let Some(error) = &record.upstream_error {
        let _ = write!(
            body,
            "<p role=\"alert\">Upstream error: {}</p>",
            escape(error)
        );
    }
    body.push_str(&exchange_part(
        "Request",
        &record.request_headers,
        &record.request_body,
    ));
    body.push_str(&exchange_part(
        "Response",
        &record.response_headers,
        &record.response_body,
    ));
    Ok(Html(page(
        "Evidence record",
        Some(&signed_in.viewer()),
        &body,
    )))
}

/// Headers (as redacted at capture) and the body: JSON indented, text as text, large bodies folded or left to
/// the download.
fn exchange_part(title: &str, headers: &[Header], body: &[u8]) -> String {
    let mut html = format!(
        "<section><h2>{}</h2><div class=\"wide\"><table><tbody>",
        escape(title)
    );
    for header in headers {
        let _ = write!(
            html,
            "<tr><th scope=\"row\">{}</th><td>{}</td></tr>",
            escape(&header.name),
            escape(&header.value)
        );
    }
    html.push_str("</tbody></table></div>");
    if body.is_empty() {
        html.push_str("<p>No body.</p></section>");
        return html;
    }
    if body.len() > SHOWN_BODY_BYTES {
        let _ = write!(
            html,
            "<p>The body ({} bytes) is in the HAR download.</p></section>",
            body.len()
        );
        return html;
    }
    let Some(shown) = body_shown(body, &HashSet::new()) else {
        let _ = write!(
            html,
            "<p>The body ({} bytes) is too heavy to show here; it is in the HAR download.</p></section>",
            body.len()
        );
        return html;
    };
    let _ = write!(
        html,
        "<details{}><summary>Body ({} bytes)</summary><pre><code>{shown}</code></pre></details></section>",
        if body.len() > FOLDED_BODY_BYTES { "" } else { " open" },
        body.len()
    );
    html
}

/// `GET /dashboard/records/{id}/har`: the record as a HAR 1.2 file, its sealed record embedded.
pub async fn har(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, DashboardError> {
    let sealed = tenant_record(&state, &signed_in, &id).await?;
    let id = sealed.record.id;
    let document = har_from_records(std::slice::from_ref(&sealed));
    Ok((
        [
            (header::CONTENT_TYPE, "application/json".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"record-{id}.har\""),
            ),
        ],
        document.to_string(),
    )
        .into_response())
}

/// The tenant's record the page's path names (another tenant's is not found).
async fn tenant_record(
    state: &AppState,
    signed_in: &SignedIn,
    id: &str,
) -> Result<SealedRecord, DashboardError> {
    state
        .store
        .get_record(signed_in.tenant(), super::page_id(id)?)
        .await?
        .ok_or(DashboardError::NotFound)
}
