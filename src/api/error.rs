//! The one error type of the HTTP layer. Every error is a JSON object with `detail` (docs/api.md §4, docs/api.md decision 9);
//! internal failures are logged here and answered with a fixed text, never their cause.

use crate::packets::lifecycle::Refusal;
use crate::packets::CommandError;
use crate::store::StoreError;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};

/// One entry of a 422 list envelope, shaped like FastAPI's so SDK users see familiar errors.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Invalid {
    #[serde(rename = "type")]
    pub kind: String,
    pub loc: Vec<Value>,
    pub msg: String,
    pub input: Value,
}

impl Invalid {
    pub fn new(kind: &str, loc: Vec<Value>, msg: impl Into<String>) -> Self {
        Self {
            kind: kind.to_string(),
            loc,
            msg: msg.into(),
            input: Value::Null,
        }
    }

    pub fn query(field: &str, kind: &str, msg: impl Into<String>, input: &str) -> Self {
        Self {
            input: Value::String(input.to_string()),
            ..Self::new(kind, vec![json!("query"), json!(field)], msg)
        }
    }
}

/// How every error reads on the wire (docs/api.md decision 9), for the OpenAPI document: `detail` is a text, the
/// claim conflict's object, or FastAPI's list of `{type, loc, msg, input}` problems.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    #[schema(value_type = Object)]
    detail: Value,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("request validation failed")]
    Validation(Vec<Invalid>),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// 409; `detail` may be an object (the claim conflict).
    #[error("conflict")]
    Conflict(Value),
    #[error("{0}")]
    Gone(String),
    /// 422 with a text `detail` (the schema-registry refusals of docs/api.md §4.3), not a list envelope.
    #[error("{0}")]
    Unprocessable(String),
    /// 422: the sender's claims did not verify and its policy is `reject`; the body carries the verdict.
    #[error("the handoff's claims did not verify")]
    Rejected(Box<crate::packets::verification::Verification>),
    #[error("request body too large")]
    PayloadTooLarge {
        received: Option<u64>,
        limit: usize,
        tier: &'static str,
    },
    /// 429: the tenant's creates for today are used up for this tier (docs/api.md §5.4).
    #[error("daily create limit reached")]
    DailyLimit { retry_after: u64 },
    #[error("database unavailable: {0}")]
    Unavailable(StoreError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl Error {
    pub fn validation(issue: Invalid) -> Self {
        Error::Validation(vec![issue])
    }
}

/// A 422 list envelope of body fields and their problems, or nothing when there are none.
pub fn body_problems(problems: Vec<(&'static str, String)>) -> Result<(), Error> {
    if problems.is_empty() {
        return Ok(());
    }
    Err(invalid_body(problems))
}

/// The 422 list envelope of body fields and their problems.
pub fn invalid_body(problems: Vec<(&'static str, String)>) -> Error {
    Error::Validation(
        problems
            .into_iter()
            .map(|(field, message)| {
                Invalid::new("value_error", vec![json!("body"), json!(field)], message)
            })
            .collect(),
    )
}

impl From<StoreError> for Error {
    fn from(error: StoreError) -> Self {
        if error.is_unavailable() {
            Error::Unavailable(error)
        } else {
            Error::Internal(error.into())
        }
    }
}

impl From<CommandError> for Error {
    fn from(error: CommandError) -> Self {
        match error {
            CommandError::NotFound(id) => Error::NotFound(format!("Packet {id} not found")),
            CommandError::Invalid(invalid) => {
                let mut loc = vec![json!("body")];
                loc.extend(invalid.loc.into_iter().map(Value::String));
                Error::validation(Invalid::new("value_error", loc, invalid.message))
            }
            CommandError::Store(error) => error.into(),
            CommandError::Internal(message) => Error::Internal(anyhow::anyhow!(message)),
            CommandError::Rejected(verification) => Error::Rejected(verification),
            CommandError::DailyCapReached { retry_after } => Error::DailyLimit { retry_after },
            CommandError::Schema(rejection) => Error::Unprocessable(rejection.to_string()),
            CommandError::Refused(refusal) => {
                let message = refusal.message();
                match refusal {
                    Refusal::IllegalTransition { .. }
                    | Refusal::NoHitlCheckpoint
                    | Refusal::NoClaims => Error::BadRequest(message),
                    Refusal::Expired { .. } => Error::Gone(message),
                    Refusal::AlreadyClaimed { claimed_by, .. } => {
                        Error::Conflict(json!({"message": message, "claimed_by": claimed_by}))
                    }
                    Refusal::AwaitingHuman { .. }
                    | Refusal::NotAwaitingHuman { .. }
                    | Refusal::AlreadyExpired { .. } => Error::Conflict(Value::String(message)),
                    Refusal::AnswerOnlyByRespond | Refusal::HitlWithoutReason => Error::validation(
                        Invalid::new("value_error", vec![json!("body"), json!("hitl")], message),
                    ),
                }
            }
        }
    }
}

/// Thousands separators, as the reference prints byte counts in its 413 message.
fn grouped(number: u64) -> String {
    let digits = number.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

impl Error {
    /// The status and JSON body this error answers with (logging what the operator must see).
    pub fn into_parts(self) -> (StatusCode, Value) {
        match self {
            Error::Validation(issues) => {
                (StatusCode::UNPROCESSABLE_ENTITY, json!({"detail": issues}))
            }
            Error::BadRequest(detail) => (StatusCode::BAD_REQUEST, json!({"detail": detail})),
            Error::Unauthorized(detail) => (StatusCode::UNAUTHORIZED, json!({"detail": detail})),
            Error::Forbidden(detail) => (StatusCode::FORBIDDEN, json!({"detail": detail})),
            Error::NotFound(detail) => (StatusCode::NOT_FOUND, json!({"detail": detail})),
            Error::Conflict(detail) => (StatusCode::CONFLICT, json!({"detail": detail})),
            Error::Gone(detail) => (StatusCode::GONE, json!({"detail": detail})),
            Error::Unprocessable(detail) => {
                (StatusCode::UNPROCESSABLE_ENTITY, json!({"detail": detail}))
            }
            Error::Rejected(verification) => {
                let detail = format!(
                    "The handoff's claims did not verify ({}: {} caught, {} error) and its policy is reject; the \
                     packet was not created (evaluation {})",
                    json!(verification.outcome).as_str().unwrap_or_default(),
                    verification.counts.caught,
                    verification.counts.error,
                    verification.evaluation_id
                );
                (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    json!({"detail": detail, "verification": verification}),
                )
            }
            Error::PayloadTooLarge {
                received,
                limit,
                tier,
            } => {
                let size = match received {
                    Some(bytes) => format!("{} bytes", grouped(bytes)),
                    None => format!("more than {} bytes", grouped(limit as u64)),
                };
                let detail = format!(
                    "Request body too large: {size} (max {} bytes for {tier} tier)",
                    grouped(limit as u64)
                );
                (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    json!({"detail": detail, "tier": tier}),
                )
            }
            Error::DailyLimit { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                json!({"detail": "Daily handoff limit reached for your tier"}),
            ),
            Error::Unavailable(error) => {
                tracing::warn!(%error, "database unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    json!({"detail": "Database unavailable"}),
                )
            }
            Error::Internal(error) => {
                tracing::error!(error = format!("{error:#}"), "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"detail": "Internal server error"}),
                )
            }
        }
    }

    /// One line for a batch item: the status the single-item route would answer, and its detail (a 422
    /// list reads as its messages).
    pub fn summary(self) -> String {
        let (status, body) = self.into_parts();
        let detail = match &body["detail"] {
            Value::String(text) => text.clone(),
            Value::Array(issues) => issues
                .iter()
                .filter_map(|issue| issue["msg"].as_str())
                .collect::<Vec<_>>()
                .join("; "),
            other => other.to_string(),
        };
        format!("{}: {detail}", status.as_u16())
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let retry_after = match &self {
            Error::DailyLimit { retry_after } => Some(*retry_after),
            Error::Unavailable(_) => Some(1),
            _ => None,
        };
        let (status, body) = self.into_parts();
        let mut response = (status, Json(body)).into_response();
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from(seconds));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn byte_counts_are_grouped_by_thousands() {
        assert_eq!(super::grouped(70_009), "70,009");
        assert_eq!(super::grouped(65_536), "65,536");
        assert_eq!(super::grouped(1_048_576), "1,048,576");
        assert_eq!(super::grouped(999), "999");
        assert_eq!(super::grouped(0), "0");
    }
}
