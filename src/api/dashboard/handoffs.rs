//! The handoff pages: the list with the API's filters, verdict badges and cursor paging, and one packet with its
//! sections, its verification (claimed next to actual), its timeline and its place in a chain.

use super::html::{badge, clip, escape, older_link, page, wire};
use super::session::SignedIn;
use super::DashboardError;
use crate::api::AppState;
use crate::packets::history::PacketEvent;
use crate::packets::listing::{PacketQuery, SearchQuery, VerificationFilter};
use crate::packets::model::{Packet, Status};
use crate::packets::verification::Verification;
use crate::paging::{Cursor, Page};
use crate::verify::{ClaimResult, Reason};
use axum::extract::{Path, Query, State};
use axum::response::Html;
use serde::Deserialize;
use std::fmt::Write;

/// Handoffs on one page of the list.
const PAGE_SIZE: i64 = 50;
/// Claims one table shows (each carries up to 4 KiB of `actual`): pages stay light whatever was claimed.
const SHOWN_CLAIMS: usize = 40;
/// Characters of a path, claimed or actual value and detail a table cell shows.
const SHOWN_TEXT: usize = 400;

#[derive(Deserialize, Default)]
pub struct ListFilters {
    #[serde(default)]
    status: String,
    #[serde(default)]
    verification: String,
    #[serde(default)]
    cursor: String,
    /// Words to search summaries and context for (most relevant first, one page).
    #[serde(default)]
    q: String,
}

impl ListFilters {
    fn query(&self) -> PacketQuery {
        PacketQuery {
            statuses: Status::parse(&self.status)
                .map(|status| vec![status.as_str().to_string()])
                .unwrap_or_default(),
            verification: verification_filter(&self.verification),
            parent: None,
            page: Page {
                cursor: Cursor::decode(&self.cursor),
                ..Page::first(PAGE_SIZE)
            },
            ..PacketQuery::default()
        }
    }
}

/// The `verification=` filter by its wire name (`PASS`, `CAUGHT`, `ERROR`, `none`); anything else is no filter.
fn verification_filter(text: &str) -> Option<VerificationFilter> {
    serde_json::from_value(serde_json::Value::String(text.to_string())).ok()
}

/// `GET /dashboard/handoffs`: the tenant's handoffs, newest first.
pub async fn list(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(filters): Query<ListFilters>,
) -> Result<Html<String>, DashboardError> {
    let store = state.store.as_ref();
    let searched = filters.q.trim();
    let found = if searched.is_empty() {
        store
            .list_packets(signed_in.tenant(), &filters.query())
            .await?
    } else {
        let search = SearchQuery {
            text: searched.to_string(),
            status: Status::parse(&filters.status).map(|status| status.as_str().to_string()),
            priority: None,
            verification: verification_filter(&filters.verification),
            page: Page::first(PAGE_SIZE),
        };
        store.search_packets(signed_in.tenant(), &search).await?
    };
    let mut body = String::from("<h1>Handoffs</h1>");
    body.push_str(&filter_form(&filters));
    if searched.is_empty() {
        let _ = write!(body, "<p>{} handoffs match.</p>", found.total);
    } else {
        let _ = write!(
            body,
            "<p>{} handoffs match “{}”; the {} most relevant are shown.</p>",
            found.total,
            escape(searched),
            found.packets.len()
        );
    }
    body.push_str(
        "<div class=\"wide\"><table><caption class=\"visually-hidden\">Handoffs, newest first</caption>\
         <thead><tr><th scope=\"col\">Summary</th><th scope=\"col\">From → to</th>\
         <th scope=\"col\">Status</th><th scope=\"col\">Verdict</th><th scope=\"col\">Created</th></tr></thead><tbody>",
    );
    for packet in &found.packets {
        body.push_str(&list_row(packet));
    }
    body.push_str("</tbody></table></div>");
    if let Some(cursor) = found.next_cursor().filter(|_| searched.is_empty()) {
        body.push_str(&older_link(
            "/dashboard/handoffs",
            &[
                ("status", &filters.status),
                ("verification", &filters.verification),
            ],
            &cursor,
            "Older handoffs",
        ));
    }
    body.push_str(&super::live::refresher());
    Ok(Html(page("Handoffs", Some(&signed_in.viewer()), &body)))
}

fn filter_form(filters: &ListFilters) -> String {
    let option = |value: &str, label: &str, chosen: &str| {
        format!(
            "<option value=\"{}\"{}>{}</option>",
            escape(value),
            if value == chosen { " selected" } else { "" },
            escape(label)
        )
    };
    let mut statuses = option("", "any", &filters.status);
    for status in Status::ALL {
        statuses.push_str(&option(status.as_str(), status.as_str(), &filters.status));
    }
    let mut verdicts = option("", "any", &filters.verification);
    for (value, label) in [
        ("PASS", "PASS"),
        ("CAUGHT", "CAUGHT"),
        ("ERROR", "ERROR"),
        ("none", "no claims"),
    ] {
        verdicts.push_str(&option(value, label, &filters.verification));
    }
    format!(
        "<form class=\"filters\" method=\"get\" action=\"/dashboard/handoffs\">\
         <label>Search<input type=\"search\" name=\"q\" value=\"{}\"></label>\
         <label>Status<select name=\"status\">{statuses}</select></label>\
         <label>Verdict<select name=\"verification\">{verdicts}</select></label>\
         <button type=\"submit\">Filter</button></form>",
        escape(&filters.q)
    )
}

fn verdict_badge(verification: Option<&Verification>) -> String {
    match verification {
        Some(verification) => badge(verification.outcome.as_str(), verification.outcome.as_str()),
        None => "<span>no claims</span>".to_string(),
    }
}

fn list_row(packet: &Packet) -> String {
    format!(
        "<tr><td data-label=\"Summary\"><a href=\"/dashboard/handoffs/{id}\">{summary}</a></td>\
         <td data-label=\"From → to\">{source} → {target}</td><td data-label=\"Status\">{status}</td>\
         <td data-label=\"Verdict\">{verdict}</td><td data-label=\"Created\">{created}</td></tr>",
        id = packet.id,
        summary = escape(&packet.context.summary),
        source = escape(&packet.metadata.source_agent.id),
        target = escape(&packet.metadata.target_agent.id),
        status = badge(packet.status.as_str(), packet.status.as_str()),
        verdict = verdict_badge(packet.verification.as_ref()),
        created = packet.created_at,
    )
}

/// `GET /dashboard/handoffs/{id}`: one handoff of the tenant (another tenant's id is not found).
pub async fn packet(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
) -> Result<Html<String>, DashboardError> {
    let id = super::page_id(&id)?;
    let store = state.store.as_ref();
    let stored = store
        .get_packet(signed_in.tenant(), id)
        .await?
        .ok_or(DashboardError::NotFound)?;
    let packet = stored.packet;
    let history = store.packet_history(signed_in.tenant(), id).await?;
    let mut body = format!(
        "<h1>{}</h1><p>{} · {} → {} · priority {}</p>",
        escape(&packet.context.summary),
        badge(packet.status.as_str(), packet.status.as_str()),
        escape(&packet.metadata.source_agent.id),
        escape(&packet.metadata.target_agent.id),
        packet.metadata.priority.as_str()
    );
    if let Some(parent) = packet.parent_packet_id {
        let _ = write!(
            body,
            "<p>Chained from <a href=\"/dashboard/handoffs/{parent}\">its parent handoff</a>.</p>"
        );
    }
    let children = store
        .list_packets(
            signed_in.tenant(),
            &PacketQuery {
                parent: Some(id),
                page: Page::first(PAGE_SIZE),
                ..PacketQuery::default()
            },
        )
        .await?;
    if !children.packets.is_empty() {
        let links: String = children
            .packets
            .iter()
            .map(|child| {
                format!(
                    "<li><a href=\"/dashboard/handoffs/{}\">{}</a> {}</li>",
                    child.id,
                    escape(&child.context.summary),
                    badge(child.status.as_str(), child.status.as_str())
                )
            })
            .collect();
        let _ = write!(
            body,
            "<section><h2>Chained from this handoff</h2><ul>{links}</ul></section>"
        );
    }
    if let Some(verification) = &packet.verification {
        body.push_str(&verification_section(verification));
    }
    let waiting = super::queue::checkpoint(&packet, &signed_in, false);
    if !waiting.is_empty() {
        let _ = write!(
            body,
            "<section aria-labelledby=\"respond\"><h2 id=\"respond\">Waiting for a human</h2>{waiting}</section>"
        );
    }
    body.push_str(&sections(&packet));
    body.push_str(&timeline(&history));
    Ok(Html(page(
        &packet.context.summary,
        Some(&signed_in.viewer()),
        &body,
    )))
}

pub(super) fn verification_section(verification: &Verification) -> String {
    format!(
        "<section aria-labelledby=\"verification\"><h2 id=\"verification\">Verification {}</h2>\
         <p>{} passed, {} caught, {} error; policy {}. <a href=\"/dashboard/evaluations/{}\">The evaluation \
         and its evidence</a></p>{}</section>",
        badge(verification.outcome.as_str(), verification.outcome.as_str()),
        verification.counts.pass,
        verification.counts.caught,
        verification.counts.error,
        crate::packets::verification::Policy::name(verification.policy),
        verification.evaluation_id,
        claims_table(&verification.per_claim),
    )
}

/// One row per claim: action, mode, path, claimed, actual, result and its reason in words.
pub(super) fn claims_table(per_claim: &[ClaimResult]) -> String {
    let mut table = String::from(
        "<div class=\"wide\"><table><thead><tr><th scope=\"col\">#</th><th scope=\"col\">Action</th>\
         <th scope=\"col\">Mode</th><th scope=\"col\">Path</th><th scope=\"col\">Claimed</th>\
         <th scope=\"col\">Actual</th><th scope=\"col\">Result</th></tr></thead><tbody>",
    );
    for claim in per_claim.iter().take(SHOWN_CLAIMS) {
        let actual = claim
            .actual
            .as_ref()
            .map_or("—".to_string(), |actual| actual.to_string());
        let _ = write!(
            table,
            "<tr><td data-label=\"#\">{}</td><td data-label=\"Action\">{}</td><td data-label=\"Mode\">{}</td>\
             <td data-label=\"Path\"><code>{}</code></td><td data-label=\"Claimed\"><code>{}</code></td>\
             <td data-label=\"Actual\"><code>{}</code></td>\
             <td data-label=\"Result\">{} <span title=\"{}\">{}</span>{}</td></tr>",
            claim.index,
            escape(claim.action_name.as_deref().unwrap_or("")),
            escape(claim.verification_mode.as_deref().unwrap_or("")),
            escape(&clip(&claim.json_path, SHOWN_TEXT)),
            escape(&clip(&claim.claimed.to_string(), SHOWN_TEXT)),
            escape(&clip(&actual, SHOWN_TEXT)),
            badge(claim.result.as_str(), claim.result.as_str()),
            claim.reason.as_str(),
            in_words(claim.reason),
            claim
                .detail
                .as_deref()
                .map(|detail| format!("<br><small>{}</small>", escape(&clip(detail, SHOWN_TEXT))))
                .unwrap_or_default(),
        );
    }
    table.push_str("</tbody></table></div>");
    if per_claim.len() > SHOWN_CLAIMS {
        let _ = write!(
            table,
            "<p>{} more claims are not shown; <code>GET /api/v1/evaluations/{{id}}</code> has every one.</p>",
            per_claim.len() - SHOWN_CLAIMS
        );
    }
    table
}

/// A reason code as a person reads it.
fn in_words(reason: Reason) -> &'static str {
    match reason {
        Reason::Match => "the record says the same",
        Reason::ValueMismatch => "the record says something else",
        Reason::PathNotFound => "the path selects nothing in the record",
        Reason::PresenceMismatch => "present or absent, not as claimed",
        Reason::NotNumeric => "not a number where a number was needed",
        Reason::OutOfRange => "outside the claimed range",
        Reason::EvidenceMissing => "no such record",
        Reason::EvidenceTampered => "the record was changed after capture",
        Reason::UntrustedEndpoint => "the record comes from an untrusted endpoint",
        Reason::EvidenceNotJson => "the record's body is not JSON",
        Reason::InvalidPath => "the path is not valid JSONPath",
        Reason::InvalidClaim => "the claim is malformed",
        Reason::NoClaims => "there were no claims",
        Reason::StoreUnavailable => "the evidence store did not answer",
        Reason::ResourceLimit => "the evaluation's budget ran out",
    }
}

/// Context, conversation, decisions, actions, dependencies and the checkpoint, each when it has anything.
fn sections(packet: &Packet) -> String {
    let mut html = String::new();
    let mut section = |title: &str, items: Vec<String>| {
        if !items.is_empty() {
            let _ = write!(
                html,
                "<section><h2>{}</h2><ul>{}</ul></section>",
                escape(title),
                items.concat()
            );
        }
    };
    let item = |text: String| format!("<li>{}</li>", escape(&text));
    section(
        "Conversation",
        packet
            .context
            .conversation_state
            .iter()
            .map(|entry| item(format!("{}: {}", wire(&entry.role), entry.content)))
            .collect(),
    );
    section(
        "Decisions",
        packet
            .decisions
            .iter()
            .map(|decision| item(format!("{} — {}", decision.decision, decision.rationale)))
            .collect(),
    );
    let actions = &packet.actions;
    section(
        "Actions",
        actions
            .pending
            .iter()
            .map(|action| {
                item(format!(
                    "pending: {} ({})",
                    action.description, action.assignee
                ))
            })
            .chain(actions.completed.iter().map(|action| {
                item(format!(
                    "completed: {} — {}",
                    action.description, action.result
                ))
            }))
            .chain(
                actions.failed.iter().map(|action| {
                    item(format!("failed: {} — {}", action.description, action.error))
                }),
            )
            .collect(),
    );
    section(
        "Dependencies",
        packet
            .dependencies
            .iter()
            .map(|dependency| {
                item(format!(
                    "{}: {}",
                    wire(&dependency.status),
                    dependency.description
                ))
            })
            .collect(),
    );
    // A waiting checkpoint is shown with its respond form instead (`queue::checkpoint`).
    if let Some(hitl) = packet
        .hitl
        .as_ref()
        .filter(|_| packet.status != Status::AwaitingHuman)
    {
        let mut lines = vec![item(format!("Reason: {}", hitl.reason))];
        lines.extend(
            hitl.question
                .iter()
                .map(|question| item(format!("Question: {question}"))),
        );
        if let Some(options) = &hitl.options {
            lines.push(item(format!("Options: {}", options.join(" / "))));
        }
        lines.extend(
            hitl.response
                .iter()
                .map(|response| item(format!("Response: {response}"))),
        );
        section("Human checkpoint", lines);
    }
    let custom = serde_json::Value::Object(packet.context.custom.clone());
    if !packet.context.custom.is_empty() {
        let _ = write!(
            html,
            "<section><h2>Context</h2><pre>{}</pre></section>",
            escape(&serde_json::to_string_pretty(&custom).unwrap_or_default())
        );
    }
    html
}

fn timeline(history: &[PacketEvent]) -> String {
    let mut html = String::from("<section><h2>Timeline</h2><ol>");
    for event in history {
        let _ = write!(
            html,
            "<li><time>{}</time> {} by {}</li>",
            event.timestamp,
            escape(&event.event_type),
            escape(&event.actor)
        );
    }
    html.push_str("</ol></section>");
    html
}
