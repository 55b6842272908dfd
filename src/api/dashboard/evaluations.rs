//! The evaluation pages: the tenant's evaluations with outcome and run filters, and one evaluation with a row per
//! claim (claimed next to actual, the reason in words) and each evidence record's JSON body with the nodes the
//! claims' paths select marked — read from the record as stored, its seal checked now.

use super::handoffs::claims_table;
use super::html::{address, badge, escape, highlighted, older_link, page, SHOWN_RENDERED};
use super::session::SignedIn;
use super::DashboardError;
use crate::api::AppState;
use crate::evaluations::{EvaluationQuery, StoredEvaluation};
use crate::paging::{Cursor, Page};
use crate::verify::budget::Budget;
use crate::verify::jsonpath::{Evaluator, JsonPath};
use crate::verify::{Limits, Outcome, Reason};
use axum::extract::{Path, Query, State};
use axum::response::Html;
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeSet, HashSet};
use std::fmt::Write;
use uuid::Uuid;

/// Evidence bodies larger than this are not shown inline (the page stays light); the record's API has them.
const SHOWN_BODY_BYTES: usize = 48 << 10;
/// Records whose bodies one evaluation page shows.
const SHOWN_RECORDS: usize = 2;
/// What marking the selected nodes may spend on one page, across every claim and record.
const MARKING_LIMITS: Limits = Limits {
    steps: 200_000,
    time: std::time::Duration::from_millis(100),
    path_bytes: 4096,
    path_depth: 32,
    regex_bytes: 1024,
    regex_compiled_bytes: 256 * 1024,
    text_bytes: 4096,
};

#[derive(Deserialize, Default)]
pub struct ListFilters {
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    run_id: String,
    #[serde(default)]
    agent_id: String,
    #[serde(default)]
    cursor: String,
}

/// `GET /dashboard/evaluations`: the tenant's evaluations, newest first.
pub async fn list(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(filters): Query<ListFilters>,
) -> Result<Html<String>, DashboardError> {
    let query = EvaluationQuery {
        run_id: Some(filters.run_id.trim().to_string()).filter(|run| !run.is_empty()),
        agent_id: Some(filters.agent_id.trim().to_string()).filter(|agent| !agent.is_empty()),
        outcome: Outcome::parse(&filters.outcome),
        page: Page {
            cursor: Cursor::decode(&filters.cursor),
            ..Page::first(50)
        },
    };
    let (evaluations, has_more) = state
        .store
        .list_evaluations(signed_in.tenant(), &query)
        .await?;
    let outcomes: String = ["", "PASS", "CAUGHT", "ERROR"]
        .iter()
        .map(|outcome| {
            format!(
                "<option value=\"{outcome}\"{}>{}</option>",
                if *outcome == filters.outcome {
                    " selected"
                } else {
                    ""
                },
                if outcome.is_empty() { "any" } else { outcome }
            )
        })
        .collect();
    let mut body = format!(
        "<h1>Evaluations</h1><form class=\"filters\" method=\"get\" action=\"/dashboard/evaluations\">\
         <label>Outcome<select name=\"outcome\">{outcomes}</select></label>\
         <label>Run<input name=\"run_id\" value=\"{}\"></label>\
         <label>Agent<input name=\"agent_id\" value=\"{}\"></label><button type=\"submit\">Filter</button></form>\
         <div class=\"wide\"><table><thead><tr><th scope=\"col\">Outcome</th><th scope=\"col\">Run</th>\
         <th scope=\"col\">Agent</th><th scope=\"col\">Claims</th><th scope=\"col\">Created</th></tr></thead><tbody>",
        escape(&filters.run_id),
        escape(&filters.agent_id)
    );
    for evaluation in &evaluations {
        let _ = write!(
            body,
            "<tr><td><a href=\"/dashboard/evaluations/{id}\">{}</a></td><td>{}</td><td>{}</td>\
             <td>{} passed, {} caught, {} error</td><td>{}</td></tr>",
            badge(evaluation.outcome.as_str(), evaluation.outcome.as_str()),
            escape(evaluation.run_id.as_deref().unwrap_or("")),
            escape(evaluation.agent_id.as_deref().unwrap_or("")),
            evaluation.counts.pass,
            evaluation.counts.caught,
            evaluation.counts.error,
            evaluation.created_at,
            id = evaluation.id,
        );
    }
    body.push_str("</tbody></table></div>");
    if let (true, Some(last)) = (has_more, evaluations.last()) {
        body.push_str(&older_link(
            "/dashboard/evaluations",
            &[
                ("outcome", &filters.outcome),
                ("run_id", &filters.run_id),
                ("agent_id", &filters.agent_id),
            ],
            &last.position(),
            "Older evaluations",
        ));
    }
    Ok(Html(page("Evaluations", Some(&signed_in.viewer()), &body)))
}

/// `GET /dashboard/evaluations/{id}`: one evaluation of the tenant, with its evidence.
pub async fn evaluation(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
) -> Result<Html<String>, DashboardError> {
    let id = super::page_id(&id)?;
    let evaluation = state
        .store
        .get_evaluation(signed_in.tenant(), id)
        .await?
        .ok_or(DashboardError::NotFound)?;
    let mut body = format!(
        "<h1>Evaluation {}</h1><p>{} passed, {} caught, {} error · run {} · agent {} · {}</p>",
        badge(evaluation.outcome.as_str(), evaluation.outcome.as_str()),
        evaluation.counts.pass,
        evaluation.counts.caught,
        evaluation.counts.error,
        escape(evaluation.run_id.as_deref().unwrap_or("none")),
        escape(evaluation.agent_id.as_deref().unwrap_or("none")),
        evaluation.created_at,
    );
    if let Some(packet) = evaluation.packet_id {
        let _ = write!(
            body,
            "<p>The claims of <a href=\"/dashboard/handoffs/{packet}\">a handoff</a>.</p>"
        );
    }
    body.push_str(&claims_table(&evaluation.per_claim));
    // One budget for every path the page runs: a page view costs a bounded amount, whatever was stored.
    let mut evaluator = Evaluator::new(Budget::new(MARKING_LIMITS));
    let records = records_of(&evaluation);
    for record in records.iter().take(SHOWN_RECORDS) {
        let section =
            evidence_section(&state, &signed_in, &evaluation, *record, &mut evaluator).await?;
        body.push_str(&section);
    }
    if records.len() > SHOWN_RECORDS {
        let _ = write!(
            body,
            "<p>{} more records are named by the claims; each is under Evidence.</p>",
            records.len() - SHOWN_RECORDS
        );
    }
    Ok(Html(page("Evaluation", Some(&signed_in.viewer()), &body)))
}

/// The records the claims name, each once.
fn records_of(evaluation: &StoredEvaluation) -> BTreeSet<Uuid> {
    evaluation
        .per_claim
        .iter()
        .filter_map(|claim| claim.record_id.as_deref())
        .filter_map(|id| Uuid::parse_str(id.trim()).ok())
        .collect()
}

/// One record's body with every node the claims on it select marked, its seal checked now.
async fn evidence_section(
    state: &AppState,
    signed_in: &SignedIn,
    evaluation: &StoredEvaluation,
    id: Uuid,
    evaluator: &mut Evaluator,
) -> Result<String, DashboardError> {
    let mut html =
        format!("<section aria-labelledby=\"r-{id}\"><h2 id=\"r-{id}\">Evidence record <a href=\"/dashboard/records/{id}\">{id}</a></h2>");
    let Some(sealed) = state.store.get_record(signed_in.tenant(), id).await? else {
        html.push_str("<p>No such record in this tenant.</p></section>");
        return Ok(html);
    };
    let record = &sealed.record;
    let integrity = if state.record_key.verify(&sealed).is_valid() {
        badge("PASS", "seal verified now")
    } else {
        badge(
            "CAUGHT",
            "seal does not verify: the record was changed after capture",
        )
    };
    let _ = write!(
        html,
        "<p>{} {} → {} · {integrity}</p>",
        escape(&record.method),
        escape(&record.url),
        record
            .status
            .map_or("no response".to_string(), |status| status.to_string()),
    );
    if record.response_body.len() > SHOWN_BODY_BYTES {
        let _ = write!(
            html,
            "<p>The body ({} bytes) is too large to show here; <code>GET /api/v1/records/{id}</code> has it.</p></section>",
            record.response_body.len()
        );
        return Ok(html);
    }
    let Ok(document) = serde_json::from_slice::<Value>(&record.response_body) else {
        html.push_str("<p>The body is not JSON.</p></section>");
        return Ok(html);
    };
    let mut marked = HashSet::new();
    let mut complete = true;
    let on_this_record = evaluation.per_claim.iter().filter(|claim| {
        claim.record_id.as_deref().map(str::trim) == Some(id.to_string().as_str())
            && claim.reason != Reason::ResourceLimit
    });
    for claim in on_this_record {
        let Ok(path) = JsonPath::parse(&claim.json_path, &MARKING_LIMITS) else {
            continue;
        };
        match path.select(&document, evaluator) {
            Ok(nodes) => marked.extend(nodes.into_iter().map(address)),
            Err(_) => {
                complete = false;
                break;
            }
        }
    }
    let shown = highlighted(&document, &marked);
    if shown.len() > SHOWN_RENDERED {
        let _ = write!(
            html,
            "<p>The body is too heavy to show here; <code>GET /api/v1/records/{id}</code> has it.</p></section>"
        );
        return Ok(html);
    }
    let _ = write!(
        html,
        "<p>The nodes the claims' paths select are <mark>marked</mark>{}.</p><pre><code>{shown}</code></pre></section>",
        if complete { "" } else { " (not all: the page's budget for marking ran out)" },
    );
    Ok(html)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selected_nodes_are_marked_and_text_escaped() {
        let document = json!({"order": {"total": 89.5, "note": "<b>"}, "items": [1, 2]});
        let path = JsonPath::parse("$.order.total", &Limits::default()).expect("path");
        let mut evaluator = Evaluator::new(Budget::new(Limits::default()));
        let nodes = path.select(&document, &mut evaluator).expect("nodes");
        let marked: HashSet<usize> = nodes.into_iter().map(address).collect();
        let html = highlighted(&document, &marked);
        assert!(
            html.contains("&quot;total&quot;: <mark>89.5</mark>"),
            "{html}"
        );
        assert!(html.contains("&quot;&lt;b&gt;&quot;"), "{html}");
        assert_eq!(html.matches("<mark>").count(), 1);
    }
}
