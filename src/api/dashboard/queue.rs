//! The human queue: handoffs awaiting a person, oldest first, each with its checkpoint's question and options,
//! the claims that did not pass when verification set the checkpoint, and a respond form for keys that may
//! respond (`agent` and up, as `POST /api/v1/packets/{id}/respond` needs; a reader sees no form).

use super::handoffs::verification_section;
use super::html::{badge, escape, page};
use super::session::SignedIn;
use super::DashboardError;
use crate::api::AppState;
use crate::auth::Role;
use crate::packets::lifecycle::Refusal;
use crate::packets::model::{HumanResponse, Packet, Status};
use crate::packets::CommandError;
use crate::paging::Page;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use std::fmt::Write;

/// Longest answer and notes a form may send (characters).
const MAX_RESPONSE: usize = 1_000;
const MAX_NOTES: usize = 10_000;

/// `GET /dashboard/queue`: the tenant's handoffs awaiting a human, oldest first.
pub async fn list(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Html<String>, DashboardError> {
    let waiting = state
        .store
        .list_awaiting(signed_in.tenant(), Page::first(100))
        .await?;
    let mut body = format!(
        "<h1>Waiting for a human</h1><p>{} handoffs wait, oldest first.</p>",
        waiting.total
    );
    for packet in &waiting.packets {
        let _ = write!(
            body,
            "<section aria-labelledby=\"h-{id}\"><h2 id=\"h-{id}\"><a href=\"/dashboard/handoffs/{id}\">{}</a></h2>\
             <p>{} → {} · waiting since {}</p>",
            escape(&packet.context.summary),
            escape(&packet.metadata.source_agent.id),
            escape(&packet.metadata.target_agent.id),
            packet.updated_at,
            id = packet.id,
        );
        body.push_str(&checkpoint(packet, &signed_in, true));
        body.push_str("</section>");
    }
    Ok(Html(page(
        "Waiting for a human",
        Some(&signed_in.viewer()),
        &body,
    )))
}

/// A waiting packet's question and options, the claims that did not pass (`with_claims`), and the respond form
/// when the signed-in key may respond.
pub fn checkpoint(packet: &Packet, signed_in: &SignedIn, with_claims: bool) -> String {
    let Some(hitl) = packet
        .hitl
        .as_ref()
        .filter(|_| packet.status == Status::AwaitingHuman)
    else {
        return String::new();
    };
    let mut html = format!("<p><strong>Why:</strong> {}</p>", escape(&hitl.reason));
    if let Some(question) = &hitl.question {
        let _ = write!(
            html,
            "<p><strong>Question:</strong> {}</p>",
            escape(question)
        );
    }
    if let Some(verification) = packet.verification.as_ref().filter(|verification| {
        with_claims && verification.counts.caught + verification.counts.error > 0
    }) {
        html.push_str(&verification_section(verification));
    }
    if !signed_in.key.role.grants(Role::Agent) {
        let _ = write!(
            html,
            "<p>{} keys can look but not respond.</p>",
            badge("", signed_in.key.role.as_str())
        );
        return html;
    }
    let options: String = hitl
        .options
        .iter()
        .flatten()
        .map(|option| {
            format!(
                "<button type=\"submit\" name=\"response\" value=\"{0}\">{0}</button> ",
                escape(option)
            )
        })
        .collect();
    let _ = write!(
        html,
        "<form method=\"post\" action=\"/dashboard/handoffs/{id}/respond\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <p><label for=\"notes-{id}\">Notes</label> <textarea id=\"notes-{id}\" name=\"notes\" maxlength=\"{MAX_NOTES}\" rows=\"2\"></textarea></p>\
         <p>{options}</p>\
         <p><label for=\"answer-{id}\">Or answer in your own words</label> \
         <input id=\"answer-{id}\" name=\"answer\" maxlength=\"{MAX_RESPONSE}\"> \
         <button type=\"submit\">Send answer</button></p></form>",
        id = packet.id,
        csrf = escape(&signed_in.session.csrf),
    );
    html
}

#[derive(Deserialize)]
pub struct RespondForm {
    #[serde(default)]
    csrf: String,
    /// The option button pressed.
    #[serde(default)]
    response: String,
    /// The free-text answer (used when no option was pressed).
    #[serde(default)]
    answer: String,
    #[serde(default)]
    notes: String,
}

/// `POST /dashboard/handoffs/{id}/respond`: answers the checkpoint as the signed-in key, then shows the handoff.
pub async fn respond(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<RespondForm>,
) -> Result<Response, DashboardError> {
    signed_in.check_csrf(&form.csrf)?;
    if !signed_in.key.role.grants(Role::Agent) {
        return Err(DashboardError::Forbidden(
            "Responding needs an agent, writer or admin key.",
        ));
    }
    let id = super::page_id(&id)?;
    let response = if form.response.trim().is_empty() {
        form.answer.trim()
    } else {
        form.response.trim()
    };
    if response.is_empty()
        || response.chars().count() > MAX_RESPONSE
        || form.notes.chars().count() > MAX_NOTES
    {
        return Err(DashboardError::Invalid(
            "Choose an option or write an answer (up to 1,000 characters; notes up to 10,000).",
        ));
    }
    let answer = HumanResponse {
        response: response.to_string(),
        responded_by: format!("{} (dashboard)", signed_in.key.name),
        notes: Some(form.notes.trim().to_string()).filter(|notes| !notes.is_empty()),
    };
    match crate::packets::respond_to_checkpoint(
        state.store.as_ref(),
        signed_in.tenant(),
        id,
        &answer,
    )
    .await
    {
        Ok(_) => Ok(Redirect::to(&format!("/dashboard/handoffs/{id}")).into_response()),
        Err(CommandError::NotFound(_)) => Err(DashboardError::NotFound),
        Err(CommandError::Refused(
            Refusal::NotAwaitingHuman { .. } | Refusal::NoHitlCheckpoint,
        )) => Err(DashboardError::Conflict(
            "This handoff is no longer waiting for a human.",
        )),
        Err(CommandError::Store(error)) => Err(error.into()),
        Err(other) => Err(DashboardError::Internal(format!("{other:?}"))),
    }
}
