//! Running claims against evidence (docs/evaluator.md "Modes", "Result"). Pure: evidence arrives through a
//! resolver that the caller backs with records it already fetched, verified and trust-checked.

use super::budget::{Budget, Exhausted, Limits};
use super::claim::{Aggregate, Check, Claim, DocumentCheck, Entry, Payload};
use super::compare::{canonical_eq, claim_states, numeric};
use super::decimal::Decimal;
use super::jsonpath::{Evaluator, JsonPath};
use super::outcome::{Outcome, Reason};
use super::shown::{bounded_json, bounded_text, show};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What the caller found for an evidence reference, after the integrity and trust gates.
#[derive(Clone, Copy, Debug)]
pub enum Evidence<'a> {
    /// A verified, trusted record whose response body is this JSON document.
    Json(&'a Value),
    /// A verified, trusted record whose body is not JSON.
    NotJson,
    Missing,
    Tampered,
    Untrusted,
    /// The store could not be asked.
    Unavailable,
    /// Loading it would pass the request's limit on evidence bytes.
    TooLarge,
}

/// A response body that passed the gates: what a check runs on.
#[derive(Clone, Copy, Debug)]
enum Body<'a> {
    Json(&'a Value),
    NotJson,
}

/// Which evidence a claim (or one of its entries) refers to.
#[derive(Clone, Copy, Debug)]
pub struct EvidenceRef<'a> {
    pub record_id: Option<&'a str>,
    pub action_name: Option<&'a str>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClaimResult {
    pub index: usize,
    pub action_name: Option<String>,
    pub verification_mode: Option<String>,
    pub json_path: String,
    pub record_id: Option<String>,
    pub result: Outcome,
    pub reason: Reason,
    pub claimed: Value,
    pub actual: Option<Value>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub actual_truncated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// SourceryKit's list form: each entry's verdict, in the claim's order (absent for other claims). The
    /// claim's `json_path` and `record_id` are then those of the entry that decided it, when one did.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entries: Vec<EntryResult>,
}

/// One list-form entry's verdict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EntryResult {
    pub json_path: String,
    /// The entry's record (or the claim's); null when the record was looked up by action within the run.
    pub record_id: Option<String>,
    pub result: Outcome,
    pub reason: Reason,
    pub claimed: Value,
    pub actual: Option<Value>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub actual_truncated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Counts {
    pub pass: usize,
    pub caught: usize,
    pub error: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Evaluation {
    pub outcome: Outcome,
    pub counts: Counts,
    pub per_claim: Vec<ClaimResult>,
    /// Payload-level problems (`no_claims`).
    pub errors: Vec<String>,
}

/// The verdict of one check, before it is dressed as a `ClaimResult`.
#[derive(Clone)]
struct Finding {
    reason: Reason,
    actual: Option<Value>,
    actual_truncated: bool,
    detail: Option<String>,
}

impl Finding {
    fn new(reason: Reason, actual: Option<Value>, detail: Option<String>) -> Self {
        Self {
            reason,
            actual,
            actual_truncated: false,
            detail,
        }
    }

    /// `actual` is what the path selected, shown within the request's text limit.
    fn with_nodes(
        reason: Reason,
        nodes: &[&Value],
        detail: Option<String>,
        limits: &Limits,
    ) -> Self {
        let (actual, actual_truncated) = bounded_json(nodes, limits.text_bytes);
        Self {
            reason,
            actual: Some(actual),
            actual_truncated,
            detail,
        }
    }

    fn exhausted(why: Exhausted) -> Self {
        Finding::new(Reason::ResourceLimit, None, Some(why.to_string()))
    }

    /// As a result shows it: `actual` and `detail` within the request's text limit.
    fn shown(self, limit: usize) -> Finding {
        let (actual, cut_now) = cut(self.actual, limit);
        Finding {
            reason: self.reason,
            actual,
            actual_truncated: self.actual_truncated || cut_now,
            detail: self.detail.map(|detail| bounded_text(&detail, limit)),
        }
    }
}

/// Evaluates every claim of `payload` within the default limits; `resolve` supplies the evidence each
/// reference names.
pub fn evaluate<'e>(
    payload: &Payload,
    resolve: impl Fn(EvidenceRef<'_>) -> Evidence<'e>,
) -> Evaluation {
    evaluate_within(payload, resolve, &Limits::default())
}

/// Evaluates every claim of `payload` under one budget for the whole request: once it is spent, every claim
/// not yet decided is ERROR `resource_limit`.
pub fn evaluate_within<'e>(
    payload: &Payload,
    resolve: impl Fn(EvidenceRef<'_>) -> Evidence<'e>,
    limits: &Limits,
) -> Evaluation {
    let mut evaluator = Evaluator::new(Budget::new(*limits));
    let per_claim: Vec<ClaimResult> = payload
        .claims
        .iter()
        .map(|claim| evaluate_claim(claim, payload.run_id.is_some(), &resolve, &mut evaluator))
        .collect();
    let mut counts = Counts::default();
    for result in &per_claim {
        match result.result {
            Outcome::Pass => counts.pass += 1,
            Outcome::Caught => counts.caught += 1,
            Outcome::Error => counts.error += 1,
        }
    }
    let errors = if per_claim.is_empty() {
        vec![Reason::NoClaims.as_str().to_string()]
    } else {
        vec![]
    };
    Evaluation {
        outcome: Outcome::overall(per_claim.iter().map(|result| result.result)),
        counts,
        per_claim,
        errors,
    }
}

fn evaluate_claim<'e>(
    claim: &Claim,
    has_run: bool,
    resolve: &impl Fn(EvidenceRef<'_>) -> Evidence<'e>,
    evaluator: &mut Evaluator,
) -> ClaimResult {
    let (mut entries, mut decided_by) = (Vec::new(), None);
    let finding = match (&claim.check, evaluator.budget.spent()) {
        (Err(invalid), _) => Finding::new(invalid.reason, None, Some(invalid.detail.clone())),
        (Ok(_), Some(spent)) => Finding::exhausted(spent),
        (
            Ok(Check::Entries {
                entries: list,
                scope,
            }),
            None,
        ) => {
            let checked = check_entries(claim, list, scope.as_ref(), has_run, resolve, evaluator);
            decided_by = checked.decided_by;
            entries = checked.entries;
            checked.finding
        }
        (Ok(Check::Document(check)), None) => {
            match evidence_for(claim.record_id.as_deref(), claim, has_run, resolve) {
                Err(finding) => finding,
                Ok(Body::Json(document)) => {
                    check_document(check, document, &claim.json_path, evaluator)
                        .unwrap_or_else(Finding::exhausted)
                }
                Ok(Body::NotJson) => match check {
                    // "The call happened" needs no JSON body.
                    DocumentCheck::Presence { expected, .. } if claim.json_path.trim() == "$" => {
                        presence(*expected, true)
                    }
                    _ => not_json(),
                },
            }
        }
    };
    // A list-form claim that an entry decided is shown at that entry's path and record.
    let (json_path, record_id) = match decided_by.and_then(|index| entries.get(index)) {
        Some(entry) => (entry.json_path.clone(), entry.record_id.clone()),
        None => (claim.json_path.clone(), claim.record_id.clone()),
    };
    let shown = finding.shown(evaluator.budget.limits().text_bytes);
    ClaimResult {
        index: claim.index,
        action_name: claim.action_name.clone(),
        verification_mode: claim.verification_mode.clone(),
        json_path,
        record_id,
        result: shown.reason.outcome(),
        reason: shown.reason,
        claimed: claim.claimed.clone(),
        actual: shown.actual,
        actual_truncated: shown.actual_truncated,
        detail: shown.detail,
        entries,
    }
}

fn not_json() -> Finding {
    Finding::new(
        Reason::EvidenceNotJson,
        None,
        Some("the record's response body is not JSON".into()),
    )
}

/// Resolves a reference, turning every failure into its finding.
fn evidence_for<'e>(
    record_id: Option<&str>,
    claim: &Claim,
    has_run: bool,
    resolve: &impl Fn(EvidenceRef<'_>) -> Evidence<'e>,
) -> Result<Body<'e>, Finding> {
    if record_id.is_none() && !has_run {
        return Err(Finding::new(
            Reason::InvalidClaim,
            None,
            Some("claim has no evidence reference".into()),
        ));
    }
    let evidence = resolve(EvidenceRef {
        record_id,
        action_name: claim.action_name.as_deref(),
    });
    let failure = |reason, detail: String| Err(Finding::new(reason, None, Some(detail)));
    let action = claim.action_name.as_deref().unwrap_or_default();
    let named = match record_id {
        Some(id) => format!("record {id}"),
        None => format!("the record of action '{action}' in this run"),
    };
    match evidence {
        Evidence::Missing => failure(
            Reason::EvidenceMissing,
            match record_id {
                Some(id) => format!("record {id} was not found in this tenant"),
                None => format!("no record of action '{action}' in this run"),
            },
        ),
        Evidence::Tampered => failure(
            Reason::EvidenceTampered,
            format!("{named} fails its integrity check"),
        ),
        Evidence::Untrusted => failure(
            Reason::UntrustedEndpoint,
            format!(
                "{named} is not from one of the tenant's trusted endpoints (add its endpoint with \
                 POST /api/v1/trusted-endpoints)"
            ),
        ),
        Evidence::Unavailable => failure(
            Reason::StoreUnavailable,
            "the evidence store is unavailable".into(),
        ),
        Evidence::TooLarge => failure(
            Reason::ResourceLimit,
            format!("{named} would pass the request's limit on evidence bytes"),
        ),
        Evidence::Json(document) => Ok(Body::Json(document)),
        Evidence::NotJson => Ok(Body::NotJson),
    }
}

fn not_found(path_text: &str) -> Finding {
    Finding::new(
        Reason::PathNotFound,
        None,
        Some(format!("nothing at {}", show_path(path_text))),
    )
}

/// Paths are quoted in details, but a detail must not grow with a 4 KiB path.
fn show_path(path_text: &str) -> String {
    bounded_text(path_text, 200)
}

fn mismatch(claimed: &Value, nodes: &[&Value], path_text: &str, limits: &Limits) -> Finding {
    let detail = format!(
        "claimed {}, record has {} at {}",
        show(claimed),
        show_nodes(nodes),
        show_path(path_text)
    );
    Finding::with_nodes(Reason::ValueMismatch, nodes, Some(detail), limits)
}

/// One node as itself, several as an array, within the length `show` allows.
fn show_nodes(nodes: &[&Value]) -> String {
    match nodes {
        [one] => show(one),
        _ => show(&bounded_json(nodes, 200).0),
    }
}

fn presence(expected: bool, present: bool) -> Finding {
    if expected == present {
        Finding::new(Reason::Match, Some(Value::Bool(present)), None)
    } else {
        let detail = if expected {
            "expected a value, found none"
        } else {
            "expected nothing, found a value"
        };
        Finding::new(
            Reason::PresenceMismatch,
            Some(Value::Bool(present)),
            Some(detail.into()),
        )
    }
}

/// `claim_states` against what a path selected: one node as itself, several as an array.
fn states(claimed: &Value, nodes: &[&Value]) -> bool {
    match nodes {
        [one] => claim_states(claimed, one),
        _ => match claimed {
            Value::String(text) => serde_json::from_str::<Value>(text.trim())
                .is_ok_and(|parsed| equals_nodes(&parsed, nodes)),
            other => equals_nodes(other, nodes),
        },
    }
}

/// `canonical_eq` against what a path selected, without copying the nodes into an array.
fn equals_nodes(claimed: &Value, nodes: &[&Value]) -> bool {
    match (nodes, claimed) {
        ([one], _) => canonical_eq(claimed, one),
        (_, Value::Array(items)) => {
            items.len() == nodes.len()
                && items
                    .iter()
                    .zip(nodes)
                    .all(|(item, node)| canonical_eq(item, node))
        }
        _ => false,
    }
}

fn check_document(
    check: &DocumentCheck,
    document: &Value,
    path_text: &str,
    evaluator: &mut Evaluator,
) -> Result<Finding, Exhausted> {
    let limits = *evaluator.budget.limits();
    let select = |path: &JsonPath, evaluator: &mut Evaluator| path.select(document, evaluator);
    Ok(match check {
        DocumentCheck::FieldExtraction { path, claimed } => {
            match select(path, evaluator)?.as_slice() {
                [] => not_found(path_text),
                nodes if states(claimed, nodes) => {
                    Finding::with_nodes(Reason::Match, nodes, None, &limits)
                }
                nodes => mismatch(claimed, nodes, path_text, &limits),
            }
        }
        DocumentCheck::Exact { path, claimed } => match select(path, evaluator)?.as_slice() {
            [] => not_found(path_text),
            nodes if equals_nodes(claimed, nodes) => {
                Finding::with_nodes(Reason::Match, nodes, None, &limits)
            }
            nodes => mismatch(claimed, nodes, path_text, &limits),
        },
        DocumentCheck::Presence { path, expected } => {
            presence(*expected, !select(path, evaluator)?.is_empty())
        }
        DocumentCheck::Range {
            path,
            min,
            max,
            aggregate,
            claimed,
            abs_tol,
            rel_tol,
        } => {
            let nodes = select(path, evaluator)?;
            if nodes.is_empty() {
                return Ok(not_found(path_text));
            }
            // A single node whose value is an array is reduced over its elements, as several nodes are
            // (evaluator.md, Modes; SourceryKit averages such an array).
            let elements: Vec<&Value>;
            let values: &[&Value] = match nodes.as_slice() {
                [Value::Array(items)] => {
                    elements = items.iter().collect();
                    &elements
                }
                all => all,
            };
            if values.is_empty() && *aggregate != Aggregate::Count {
                let detail = format!("the array at {} holds no numbers", show_path(path_text));
                return Ok(Finding::with_nodes(
                    Reason::NotNumeric,
                    &nodes,
                    Some(detail),
                    &limits,
                ));
            }
            range(
                values,
                min.as_ref(),
                max.as_ref(),
                *aggregate,
                claimed.as_ref(),
                (*abs_tol, *rel_tol),
                path_text,
                &limits,
            )
        }
    })
}

/// A reduced value: exact where the aggregate allows it.
enum Reduced {
    Exact(Decimal),
    Approx(f64),
}

impl Reduced {
    fn below(&self, bound: &Decimal) -> bool {
        match self {
            Reduced::Exact(value) => value < bound,
            Reduced::Approx(value) => *value < bound.to_f64(),
        }
    }

    fn above(&self, bound: &Decimal) -> bool {
        match self {
            Reduced::Exact(value) => value > bound,
            Reduced::Approx(value) => *value > bound.to_f64(),
        }
    }

    fn to_json(&self) -> Value {
        let text = match self {
            Reduced::Exact(value) => value.to_string(),
            Reduced::Approx(value) => value.to_string(),
        };
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    fn matches(&self, claimed: &Decimal, (abs_tol, rel_tol): (f64, f64)) -> bool {
        if let Reduced::Exact(value) = self {
            if value == claimed {
                return true;
            }
        }
        let actual = match self {
            Reduced::Exact(value) => value.to_f64(),
            Reduced::Approx(value) => *value,
        };
        (claimed.to_f64() - actual).abs() <= abs_tol.max(rel_tol * actual.abs())
    }
}

#[allow(clippy::too_many_arguments)]
fn range(
    nodes: &[&Value],
    min: Option<&Decimal>,
    max: Option<&Decimal>,
    aggregate: Aggregate,
    claimed: Option<&Decimal>,
    tolerance: (f64, f64),
    path_text: &str,
    limits: &Limits,
) -> Finding {
    let path_text = show_path(path_text);
    let mut numbers = Vec::with_capacity(nodes.len());
    for node in nodes {
        match numeric(node) {
            Some(number) => numbers.push(number),
            None => {
                let detail = format!("{} at {path_text} is not a number", show(node));
                return Finding::with_nodes(Reason::NotNumeric, &[node], Some(detail), limits);
            }
        }
    }
    let each = aggregate == Aggregate::Each;
    let reduced: Vec<Reduced> = match aggregate {
        // One node is its own mean and sum: keep it exact.
        Aggregate::Mean | Aggregate::Sum if numbers.len() == 1 => {
            numbers.into_iter().map(Reduced::Exact).collect()
        }
        Aggregate::Each => numbers.into_iter().map(Reduced::Exact).collect(),
        Aggregate::Min => numbers
            .into_iter()
            .min()
            .map(Reduced::Exact)
            .into_iter()
            .collect(),
        Aggregate::Max => numbers
            .into_iter()
            .max()
            .map(Reduced::Exact)
            .into_iter()
            .collect(),
        Aggregate::Count => vec![Reduced::Exact(Decimal::from_count(numbers.len()))],
        Aggregate::Sum => vec![Reduced::Approx(numbers.iter().map(Decimal::to_f64).sum())],
        Aggregate::Mean => vec![Reduced::Approx(
            numbers.iter().map(Decimal::to_f64).sum::<f64>() / numbers.len() as f64,
        )],
    };
    let report = |reason: Reason, detail: Option<String>| {
        if each {
            Finding::with_nodes(reason, nodes, detail, limits)
        } else {
            Finding::new(reason, Some(reduced[0].to_json()), detail)
        }
    };
    for value in &reduced {
        if let Some(low) = min.filter(|low| value.below(low)) {
            let detail = format!(
                "{} at {path_text} is below the minimum {low}",
                value.to_json()
            );
            return report(Reason::OutOfRange, Some(detail));
        }
        if let Some(high) = max.filter(|high| value.above(high)) {
            let detail = format!(
                "{} at {path_text} is above the maximum {high}",
                value.to_json()
            );
            return report(Reason::OutOfRange, Some(detail));
        }
        if let Some(claimed) = claimed.filter(|claimed| !value.matches(claimed, tolerance)) {
            let detail = format!(
                "claimed {claimed}, record has {} at {path_text}",
                value.to_json()
            );
            return report(Reason::ValueMismatch, Some(detail));
        }
    }
    report(Reason::Match, None)
}

/// What a list-form claim's entries came to.
struct CheckedEntries {
    /// The claim's finding: its worst entry's (the first of them), or a match showing every entry's actual
    /// value.
    finding: Finding,
    entries: Vec<EntryResult>,
    /// The entry the claim is shown at: the one whose finding is the claim's, or the only one.
    decided_by: Option<usize>,
}

/// SourceryKit's list form: every entry must hold at its own path, in its own record (where `scope`, the
/// claim's own path, must select something); each entry's own verdict comes with the claim's.
fn check_entries<'e>(
    claim: &Claim,
    entries: &[Entry],
    scope: Option<&JsonPath>,
    has_run: bool,
    resolve: &impl Fn(EvidenceRef<'_>) -> Evidence<'e>,
    evaluator: &mut Evaluator,
) -> CheckedEntries {
    let limit = evaluator.budget.limits().text_bytes;
    let mut worst: Option<(usize, Finding)> = None;
    let mut actuals = Vec::with_capacity(entries.len());
    let mut results = Vec::with_capacity(entries.len());
    let only = |results: &Vec<EntryResult>| (results.len() == 1).then_some(0);
    for (index, entry) in entries.iter().enumerate() {
        let record_id = entry.record_id.as_deref().or(claim.record_id.as_deref());
        let finding = match evidence_for(record_id, claim, has_run, resolve) {
            Err(finding) => finding,
            Ok(Body::Json(document)) => {
                match check_entry(entry, scope, &claim.json_path, document, evaluator) {
                    Ok(finding) => finding,
                    Err(spent) => {
                        return CheckedEntries {
                            finding: Finding::exhausted(spent),
                            decided_by: only(&results),
                            entries: results,
                        }
                    }
                }
            }
            Ok(Body::NotJson) => not_json(),
        };
        actuals.push(finding.actual.clone().unwrap_or(Value::Null));
        let shown = finding.clone().shown(limit);
        results.push(EntryResult {
            json_path: entry.path_text.clone(),
            record_id: record_id.map(String::from),
            result: shown.reason.outcome(),
            reason: shown.reason,
            claimed: entry.value.clone(),
            actual: shown.actual,
            actual_truncated: shown.actual_truncated,
            detail: shown.detail,
        });
        if worst
            .as_ref()
            .is_none_or(|(_, current)| finding.reason.outcome() > current.reason.outcome())
        {
            worst = Some((index, finding));
        }
    }
    match worst {
        Some((index, finding)) if finding.reason != Reason::Match => CheckedEntries {
            finding,
            entries: results,
            decided_by: Some(index),
        },
        _ => CheckedEntries {
            finding: Finding::new(Reason::Match, Some(Value::Array(actuals)), None),
            decided_by: only(&results),
            entries: results,
        },
    }
}

/// One list-form entry on its record's document: the claim's `scope` first, then the entry's own check.
fn check_entry(
    entry: &Entry,
    scope: Option<&JsonPath>,
    scope_text: &str,
    document: &Value,
    evaluator: &mut Evaluator,
) -> Result<Finding, Exhausted> {
    if let Some(scope) = scope {
        if scope.select(document, evaluator)?.is_empty() {
            return Ok(not_found(scope_text));
        }
    }
    check_document(&entry.check, document, &entry.path_text, evaluator)
}

/// Cuts `actual` to `limit` bytes of JSON text, keeping it valid: a longer value becomes a string holding
/// the cut text.
fn cut(actual: Option<Value>, limit: usize) -> (Option<Value>, bool) {
    match actual {
        None => (None, false),
        Some(actual) => {
            let (value, truncated) = bounded_json(&[&actual], limit);
            (Some(value), truncated)
        }
    }
}
