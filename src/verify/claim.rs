//! Claims as agents send them (docs/evaluator.md "Payload"), parsed once into checks ready to run. Parsing never
//! fails as a whole: a malformed claim becomes a check that reports ERROR `invalid_claim` or `invalid_path`
//! for that claim alone, because one bad claim must not hide a caught hallucination in another.

use super::budget::Limits;
use super::decimal::Decimal;
use super::jsonpath::{JsonPath, ParseError};
use super::outcome::Reason;
use serde_json::{Map, Value};

pub const MAX_CLAIMS: usize = 1_000;
const MAX_RUN_ID: usize = 255;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aggregate {
    Mean,
    Min,
    Max,
    Sum,
    Count,
    Each,
}

impl Aggregate {
    fn parse(text: &str) -> Option<Aggregate> {
        Some(match text {
            "mean" => Aggregate::Mean,
            "min" => Aggregate::Min,
            "max" => Aggregate::Max,
            "sum" => Aggregate::Sum,
            "count" => Aggregate::Count,
            "each" => Aggregate::Each,
            _ => return None,
        })
    }
}

/// One `{"path", "value", "sourcerykit_ref"}` entry of SourceryKit's list form, with the check of its value at
/// its path (the claim's mode applied to the entry).
#[derive(Clone, Debug)]
pub struct Entry {
    pub path_text: String,
    pub value: Value,
    pub record_id: Option<String>,
    pub check: DocumentCheck,
}

/// What to check, with every path already parsed: one check of one document, or SourceryKit's list of entries,
/// each checked on its own record. `scope` is a claim-level `json_path` other than `$`, which must select at
/// least one node in each entry's record.
#[derive(Clone, Debug)]
pub enum Check {
    Document(DocumentCheck),
    Entries {
        entries: Vec<Entry>,
        scope: Option<JsonPath>,
    },
}

/// A check of one response body.
#[derive(Clone, Debug)]
pub enum DocumentCheck {
    FieldExtraction {
        path: JsonPath,
        claimed: Value,
    },
    Exact {
        path: JsonPath,
        claimed: Value,
    },
    Range {
        path: JsonPath,
        min: Option<Decimal>,
        max: Option<Decimal>,
        aggregate: Aggregate,
        claimed: Option<Decimal>,
        abs_tol: f64,
        rel_tol: f64,
    },
    Presence {
        path: JsonPath,
        expected: bool,
    },
}

/// Why a claim cannot be evaluated.
#[derive(Clone, Debug, PartialEq)]
pub struct Invalid {
    pub reason: Reason,
    pub detail: String,
}

fn invalid(detail: impl Into<String>) -> Invalid {
    Invalid {
        reason: Reason::InvalidClaim,
        detail: detail.into(),
    }
}

#[derive(Clone, Debug)]
pub struct Claim {
    pub index: usize,
    pub action_name: Option<String>,
    pub verification_mode: Option<String>,
    pub record_id: Option<String>,
    pub json_path: String,
    pub claimed: Value,
    pub check: Result<Check, Invalid>,
}

/// A parsed payload. `run_id` and `agent_id` scope evidence lookup.
#[derive(Clone, Debug)]
pub struct Payload {
    pub run_id: Option<String>,
    pub agent_id: Option<String>,
    pub answer: Option<String>,
    pub claims: Vec<Claim>,
}

/// A payload that is not even an object with a claims array: the request itself is malformed (422).
#[derive(Clone, Debug, PartialEq)]
pub struct MalformedPayload(pub String);

fn text_field(object: &Map<String, Value>, names: &[&str]) -> Option<String> {
    names.iter().find_map(|name| match object.get(*name) {
        Some(Value::String(text)) => Some(text.clone()),
        Some(Value::Number(number)) => Some(number.to_string()),
        _ => None,
    })
}

impl Payload {
    /// Parses with the default limits (the CLI, tests).
    pub fn parse(value: &Value) -> Result<Payload, MalformedPayload> {
        Payload::parse_within(value, &Limits::default())
    }

    /// Parses every claim, each path within `limits`.
    pub fn parse_within(value: &Value, limits: &Limits) -> Result<Payload, MalformedPayload> {
        let object = value
            .as_object()
            .ok_or_else(|| MalformedPayload("payload must be a JSON object".into()))?;
        let claims = match object.get("claims") {
            Some(Value::Array(claims)) => claims,
            Some(_) => return Err(MalformedPayload("claims must be an array".into())),
            None => return Err(MalformedPayload("claims is required".into())),
        };
        if claims.len() > MAX_CLAIMS {
            return Err(MalformedPayload(format!(
                "at most {MAX_CLAIMS} claims per evaluation ({} given)",
                claims.len()
            )));
        }
        let run_id = text_field(object, &["run_id"]);
        if run_id.as_ref().is_some_and(|run| run.len() > MAX_RUN_ID) {
            return Err(MalformedPayload(format!(
                "run_id is longer than {MAX_RUN_ID} characters"
            )));
        }
        Ok(Payload {
            run_id,
            agent_id: text_field(object, &["agent_id"]),
            answer: text_field(object, &["answer", "reasoning"]),
            claims: claims
                .iter()
                .enumerate()
                .map(|(index, claim)| Claim::parse(index, claim, limits))
                .collect(),
        })
    }
}

impl Claim {
    pub fn parse(index: usize, value: &Value, limits: &Limits) -> Claim {
        let empty = Map::new();
        let object = value.as_object().unwrap_or(&empty);
        let json_path = match object.get("json_path") {
            Some(Value::String(path)) => path.clone(),
            _ => "$".to_string(),
        };
        let mut claim = Claim {
            index,
            action_name: text_field(object, &["action_name"]),
            verification_mode: text_field(object, &["verification_mode"]),
            record_id: text_field(object, &["record_id", "ref", "call_ref", "query_record_id"]),
            claimed: object.get("claimed_value").cloned().unwrap_or(Value::Null),
            json_path,
            check: Err(invalid("")),
        };
        claim.check = if value.is_object() {
            prepare(&claim, object, limits)
        } else {
            Err(invalid("claim must be a JSON object"))
        };
        claim
    }
}

/// A path that is not JSONPath is `invalid_path`; one beyond the limits is `resource_limit`. The detail
/// quotes at most the first 100 characters of the path: it can be 4 KiB of brackets.
fn parse_path(text: &str, limits: &Limits) -> Result<JsonPath, Invalid> {
    let quoted: String = text.chars().take(100).collect();
    let ellipsis = if quoted.len() < text.len() { "…" } else { "" };
    JsonPath::parse(text, limits).map_err(|error| match error {
        ParseError::Invalid(why) => Invalid {
            reason: Reason::InvalidPath,
            detail: format!("{quoted}{ellipsis}: {why}"),
        },
        ParseError::TooComplex(why) => Invalid {
            reason: Reason::ResourceLimit,
            detail: format!("{quoted}{ellipsis}: {why}"),
        },
    })
}

fn bound(object: &Map<String, Value>, name: &str) -> Result<Option<Decimal>, Invalid> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => super::compare::numeric(value)
            .map(Some)
            .ok_or_else(|| invalid(format!("{name} must be a number"))),
    }
}

fn tolerance(object: &Map<String, Value>, name: &str, default: f64) -> Result<f64, Invalid> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(value) => super::compare::numeric(value)
            .map(|number| number.to_f64())
            .filter(|number| number.is_finite() && *number >= 0.0)
            .ok_or_else(|| invalid(format!("{name} must be a number ≥ 0"))),
    }
}

fn prepare(claim: &Claim, object: &Map<String, Value>, limits: &Limits) -> Result<Check, Invalid> {
    if claim.action_name.as_deref().is_none_or(str::is_empty) {
        return Err(invalid("action_name is required"));
    }
    let mode = claim
        .verification_mode
        .as_deref()
        .ok_or_else(|| invalid("verification_mode is required"))?;
    let claimed = object.get("claimed_value");
    let document = |check| Ok(Check::Document(check));
    match mode {
        "field_extraction" => {
            let claimed =
                claimed.ok_or_else(|| invalid("claimed_value is required for field_extraction"))?;
            let field = |path, claimed: &Value| {
                Ok(DocumentCheck::FieldExtraction {
                    path,
                    claimed: claimed.clone(),
                })
            };
            match entries(claim, claimed, limits, field)? {
                Some(entries) => Ok(entries),
                None => document(field(parse_path(&claim.json_path, limits)?, claimed)?),
            }
        }
        "exact" => {
            let claimed = claimed.ok_or_else(|| invalid("claimed_value is required for exact"))?;
            document(DocumentCheck::Exact {
                path: parse_path(&claim.json_path, limits)?,
                claimed: claimed.clone(),
            })
        }
        "range_threshold" => {
            let (min, max) = (bound(object, "range_min")?, bound(object, "range_max")?);
            if min.is_none() && max.is_none() {
                return Err(invalid("range_threshold needs range_min or range_max"));
            }
            if let (Some(low), Some(high)) = (&min, &max) {
                if low > high {
                    return Err(invalid("range_min is greater than range_max"));
                }
            }
            let aggregate = match object.get("aggregate") {
                None | Some(Value::Null) => Aggregate::Mean,
                Some(Value::String(text)) => Aggregate::parse(text)
                    .ok_or_else(|| invalid(format!("unknown aggregate '{text}'")))?,
                Some(_) => return Err(invalid("aggregate must be a string")),
            };
            let (abs_tol, rel_tol) = (
                tolerance(object, "abs_tol", 1e-9)?,
                tolerance(object, "rel_tol", 0.0)?,
            );
            let range = |path, claimed: Option<Decimal>| DocumentCheck::Range {
                path,
                min: min.clone(),
                max: max.clone(),
                aggregate,
                claimed,
                abs_tol,
                rel_tol,
            };
            // SourceryKit's list form: each entry's value must match the actual at its path, and that
            // actual must lie within the bounds.
            let entry = |path, value: &Value| {
                let claimed = super::compare::numeric(value)
                    .ok_or_else(|| invalid("its value must be a number for range_threshold"))?;
                Ok(range(path, Some(claimed)))
            };
            if let Some(entries) = entries(claim, claimed.unwrap_or(&Value::Null), limits, entry)? {
                return Ok(entries);
            }
            let claimed = match claimed {
                None | Some(Value::Null) => None,
                Some(value) => Some(super::compare::numeric(value).ok_or_else(|| {
                    invalid("claimed_value must be a number for range_threshold")
                })?),
            };
            document(range(parse_path(&claim.json_path, limits)?, claimed))
        }
        "presence" => {
            let expected = match claimed {
                None | Some(Value::Null) => true,
                Some(Value::Bool(flag)) => *flag,
                Some(Value::String(text)) if text.eq_ignore_ascii_case("true") => true,
                Some(Value::String(text)) if text.eq_ignore_ascii_case("false") => false,
                Some(_) => return Err(invalid("claimed_value must be true or false for presence")),
            };
            document(DocumentCheck::Presence {
                path: parse_path(&claim.json_path, limits)?,
                expected,
            })
        }
        other => Err(invalid(format!("unknown verification_mode '{other}'"))),
    }
}

/// SourceryKit's list form: a non-empty array of objects that each name a `path`, each entry checked by
/// `check` (its parsed path, its value); None when `claimed` is not in that form.
fn entries(
    claim: &Claim,
    claimed: &Value,
    limits: &Limits,
    check: impl Fn(JsonPath, &Value) -> Result<DocumentCheck, Invalid>,
) -> Result<Option<Check>, Invalid> {
    let Some(items) = claimed.as_array() else {
        return Ok(None);
    };
    let is_entry = |item: &Value| {
        item.as_object()
            .is_some_and(|entry| entry.contains_key("path"))
    };
    if items.is_empty() || !items.iter().all(is_entry) {
        return Ok(None);
    }
    let entries = items
        .iter()
        .filter_map(Value::as_object)
        .map(|entry| {
            let path_text = match entry.get("path") {
                Some(Value::String(path)) => path.clone(),
                _ => return Err(invalid("each claimed_value entry needs a string path")),
            };
            let value = entry
                .get("value")
                .cloned()
                .ok_or_else(|| invalid(format!("entry {path_text} has no value")))?;
            Ok(Entry {
                check: check(parse_path(&path_text, limits)?, &value)
                    .map_err(|why| invalid(format!("entry {path_text}: {}", why.detail)))?,
                path_text,
                value,
                record_id: text_field(entry, &["sourcerykit_ref", "ref", "record_id"]),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let scope = match claim.json_path.trim() {
        "$" => None,
        path => Some(parse_path(path, limits)?),
    };
    Ok(Some(Check::Entries { entries, scope }))
}
