//! Running claims against evidence (evaluator.md "Modes", "Result"). Pure: evidence arrives through a
//! resolver that the caller backs with records it already fetched, verified and trust-checked.

use super::claim::{Aggregate, Check, Claim, Entry, Payload};
use super::compare::{canonical_eq, claim_states, numeric};
use super::decimal::Decimal;
use super::outcome::{Outcome, Reason};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json_path::JsonPath;

/// `actual` is cut to this many bytes of JSON text.
const ACTUAL_LIMIT: usize = 4 * 1024;

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
}

/// Which evidence a claim (or one of its entries) refers to.
#[derive(Clone, Copy, Debug)]
pub struct EvidenceRef<'a> {
    pub record_id: Option<&'a str>,
    pub action_name: Option<&'a str>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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
struct Finding {
    reason: Reason,
    actual: Option<Value>,
    detail: Option<String>,
}

impl Finding {
    fn new(reason: Reason, actual: Option<Value>, detail: Option<String>) -> Self {
        Self {
            reason,
            actual,
            detail,
        }
    }
}

/// Evaluates every claim of `payload`; `resolve` supplies the evidence each reference names.
pub fn evaluate<'e>(
    payload: &Payload,
    resolve: impl Fn(EvidenceRef<'_>) -> Evidence<'e>,
) -> Evaluation {
    let per_claim: Vec<ClaimResult> = payload
        .claims
        .iter()
        .map(|claim| evaluate_claim(claim, payload.run_id.is_some(), &resolve))
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
) -> ClaimResult {
    let finding = match &claim.check {
        Err(invalid) => Finding::new(invalid.reason, None, Some(invalid.detail.clone())),
        Ok(Check::FieldEntries(entries)) => check_entries(claim, entries, has_run, resolve),
        Ok(check) => match evidence_for(claim.record_id.as_deref(), claim, has_run, resolve) {
            Err(finding) => finding,
            Ok(Evidence::Json(document)) => check_document(check, document, &claim.json_path),
            Ok(Evidence::NotJson) => match check {
                // "The call happened" needs no JSON body.
                Check::Presence { expected, .. } if claim.json_path.trim() == "$" => {
                    presence(*expected, true)
                }
                _ => Finding::new(
                    Reason::EvidenceNotJson,
                    None,
                    Some("the record's response body is not JSON".into()),
                ),
            },
            Ok(_) => unreachable!("evidence_for maps the failures"),
        },
    };
    let (actual, actual_truncated) = cut(finding.actual);
    ClaimResult {
        index: claim.index,
        action_name: claim.action_name.clone(),
        verification_mode: claim.verification_mode.clone(),
        json_path: claim.json_path.clone(),
        record_id: claim.record_id.clone(),
        result: finding.reason.outcome(),
        reason: finding.reason,
        claimed: claim.claimed.clone(),
        actual,
        actual_truncated,
        detail: finding.detail,
    }
}

/// Resolves a reference, turning every failure into its finding.
fn evidence_for<'e>(
    record_id: Option<&str>,
    claim: &Claim,
    has_run: bool,
    resolve: &impl Fn(EvidenceRef<'_>) -> Evidence<'e>,
) -> Result<Evidence<'e>, Finding> {
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
    let named = match record_id {
        Some(id) => format!("record {id}"),
        None => format!(
            "a record of action '{}' in this run",
            claim.action_name.as_deref().unwrap_or_default()
        ),
    };
    match evidence {
        Evidence::Missing => failure(Reason::EvidenceMissing, format!("no {named}")),
        Evidence::Tampered => failure(
            Reason::EvidenceTampered,
            format!("{named} fails its integrity check"),
        ),
        Evidence::Untrusted => failure(
            Reason::UntrustedEndpoint,
            format!("{named} is not from a trusted endpoint"),
        ),
        Evidence::Unavailable => failure(
            Reason::StoreUnavailable,
            "the evidence store is unavailable".into(),
        ),
        found => Ok(found),
    }
}

/// The value a query found: one node as itself, several as an array in document order.
fn actual_of(path: &JsonPath, document: &Value) -> Option<Value> {
    let nodes = path.query(document).all();
    match nodes.len() {
        0 => None,
        1 => Some(nodes[0].clone()),
        _ => Some(Value::Array(nodes.into_iter().cloned().collect())),
    }
}

fn not_found(path_text: &str) -> Finding {
    Finding::new(
        Reason::PathNotFound,
        None,
        Some(format!("nothing at {path_text}")),
    )
}

fn mismatch(claimed: &Value, actual: Value, path_text: &str) -> Finding {
    let detail = format!(
        "claimed {}, record has {} at {path_text}",
        show(claimed),
        show(&actual)
    );
    Finding::new(Reason::ValueMismatch, Some(actual), Some(detail))
}

/// Claimed strings are shown without quotes, as people wrote them.
fn show(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
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

fn check_document(check: &Check, document: &Value, path_text: &str) -> Finding {
    match check {
        Check::FieldExtraction { path, claimed } => match actual_of(path, document) {
            None => not_found(path_text),
            Some(actual) if claim_states(claimed, &actual) => {
                Finding::new(Reason::Match, Some(actual), None)
            }
            Some(actual) => mismatch(claimed, actual, path_text),
        },
        Check::Exact { path, claimed } => match actual_of(path, document) {
            None => not_found(path_text),
            Some(actual) if canonical_eq(claimed, &actual) => {
                Finding::new(Reason::Match, Some(actual), None)
            }
            Some(actual) => mismatch(claimed, actual, path_text),
        },
        Check::Presence { path, expected } => presence(*expected, !path.query(document).is_empty()),
        Check::Range {
            path,
            min,
            max,
            aggregate,
            claimed,
            abs_tol,
            rel_tol,
        } => {
            let nodes = path.query(document).all();
            if nodes.is_empty() {
                return not_found(path_text);
            }
            range(
                &nodes,
                min.as_ref(),
                max.as_ref(),
                *aggregate,
                claimed.as_ref(),
                (*abs_tol, *rel_tol),
                path_text,
            )
        }
        Check::FieldEntries(_) => unreachable!("entries are checked per entry"),
    }
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

fn range(
    nodes: &[&Value],
    min: Option<&Decimal>,
    max: Option<&Decimal>,
    aggregate: Aggregate,
    claimed: Option<&Decimal>,
    tolerance: (f64, f64),
    path_text: &str,
) -> Finding {
    let mut numbers = Vec::with_capacity(nodes.len());
    for node in nodes {
        match numeric(node) {
            Some(number) => numbers.push(number),
            None => {
                let detail = format!("{} at {path_text} is not a number", show(node));
                return Finding::new(Reason::NotNumeric, Some((*node).clone()), Some(detail));
            }
        }
    }
    let actual_json = if nodes.len() == 1 {
        nodes[0].clone()
    } else {
        Value::Array(nodes.iter().map(|node| (*node).clone()).collect())
    };
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
        Aggregate::Count => vec![Reduced::Exact(
            Decimal::parse(&numbers.len().to_string()).unwrap_or_else(|| unreachable!()),
        )],
        Aggregate::Sum => vec![Reduced::Approx(numbers.iter().map(Decimal::to_f64).sum())],
        Aggregate::Mean => vec![Reduced::Approx(
            numbers.iter().map(Decimal::to_f64).sum::<f64>() / numbers.len() as f64,
        )],
    };
    let reported = if aggregate == Aggregate::Each {
        actual_json
    } else {
        reduced[0].to_json()
    };
    for value in &reduced {
        if let Some(low) = min.filter(|low| value.below(low)) {
            let detail = format!(
                "{} at {path_text} is below the minimum {low}",
                value.to_json()
            );
            return Finding::new(Reason::OutOfRange, Some(reported), Some(detail));
        }
        if let Some(high) = max.filter(|high| value.above(high)) {
            let detail = format!(
                "{} at {path_text} is above the maximum {high}",
                value.to_json()
            );
            return Finding::new(Reason::OutOfRange, Some(reported), Some(detail));
        }
        if let Some(claimed) = claimed.filter(|claimed| !value.matches(claimed, tolerance)) {
            let detail = format!(
                "claimed {claimed}, record has {} at {path_text}",
                value.to_json()
            );
            return Finding::new(Reason::ValueMismatch, Some(reported), Some(detail));
        }
    }
    Finding::new(Reason::Match, Some(reported), None)
}

/// SourceryKit's list form: every entry must hold at its own path, in its own record.
fn check_entries<'e>(
    claim: &Claim,
    entries: &[Entry],
    has_run: bool,
    resolve: &impl Fn(EvidenceRef<'_>) -> Evidence<'e>,
) -> Finding {
    let mut worst: Option<Finding> = None;
    let mut actuals = Vec::with_capacity(entries.len());
    for entry in entries {
        let record_id = entry.record_id.as_deref().or(claim.record_id.as_deref());
        let finding = match evidence_for(record_id, claim, has_run, resolve) {
            Err(finding) => finding,
            Ok(Evidence::Json(document)) => check_document(
                &Check::FieldExtraction {
                    path: entry.path.clone(),
                    claimed: entry.value.clone(),
                },
                document,
                &entry.path_text,
            ),
            Ok(_) => Finding::new(
                Reason::EvidenceNotJson,
                None,
                Some("the record's response body is not JSON".into()),
            ),
        };
        actuals.push(finding.actual.clone().unwrap_or(Value::Null));
        if worst
            .as_ref()
            .is_none_or(|current| finding.reason.outcome() > current.reason.outcome())
        {
            worst = Some(finding);
        }
    }
    match worst {
        Some(finding) if finding.reason != Reason::Match => finding,
        _ => Finding::new(Reason::Match, Some(Value::Array(actuals)), None),
    }
}

/// Cuts `actual` to 4 KiB of JSON text, keeping it valid: a longer value becomes a string holding the cut text.
fn cut(actual: Option<Value>) -> (Option<Value>, bool) {
    let Some(actual) = actual else {
        return (None, false);
    };
    let text = actual.to_string();
    if text.len() <= ACTUAL_LIMIT {
        return (Some(actual), false);
    }
    let mut end = ACTUAL_LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (Some(Value::String(text[..end].to_string())), true)
}
