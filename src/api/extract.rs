//! Extractors that turn a request into domain input or a JSON 4xx: the authenticated caller, JSON bodies
//! limited by the caller's tier, query strings and UUID path segments.

use super::error::{Error, Invalid};
use super::AppState;
use crate::auth::ApiKey;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use uuid::Uuid;

/// The key that made the request; put into the request by the `authenticate` middleware.
#[derive(Clone, Debug)]
pub struct Caller(pub ApiKey);

impl Caller {
    pub fn tenant(&self) -> &str {
        &self.0.tenant_id
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or(Error::Unauthorized("Missing X-API-Key header"))
    }
}

/// A JSON body, read up to the caller's tier limit and parsed into `T`; failures are 413 or 422.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = Error;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let tier = request
            .extensions()
            .get::<Caller>()
            .map(|caller| caller.0.tier)
            .ok_or(Error::Unauthorized("Missing X-API-Key header"))?;
        let limit = usize::try_from(state.config.limits.max_body.get(tier)).unwrap_or(usize::MAX);
        let declared = request
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        let too_large = |received| Error::PayloadTooLarge {
            received,
            limit,
            tier: tier.as_str(),
        };
        let mut body = request.into_body();
        if declared.is_some_and(|length| length > limit as u64) {
            drain(&mut body, 0).await;
            return Err(too_large(declared));
        }
        let mut bytes = Vec::with_capacity(declared.unwrap_or(0) as usize);
        while let Some(frame) = body.frame().await {
            let frame =
                frame.map_err(|_| Error::BadRequest("Could not read the request body".into()))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if bytes.len() + data.len() > limit {
                let received = drain(&mut body, (bytes.len() + data.len()) as u64).await;
                return Err(too_large(received));
            }
            bytes.extend_from_slice(&data);
        }
        let parsed = parse_json(&bytes)?;
        // Valid JSON here: read once more as a tree to check what both databases can store.
        let tree: Value = serde_json::from_slice(&bytes)
            .map_err(|_| Error::BadRequest("Could not read the request body".into()))?;
        super::storable::check_body(&tree)?;
        Ok(ApiJson(parsed))
    }
}

/// Reads and discards the rest of a refused body, so that the client finishes sending and reads our 413
/// instead of a reset connection. Gives up past `DRAIN_CAP` bytes (the connection is then closed). Returns
/// the total size when the body was read to its end.
async fn drain(body: &mut axum::body::Body, mut received: u64) -> Option<u64> {
    const DRAIN_CAP: u64 = 8 * 1024 * 1024;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { return None };
        if let Ok(data) = frame.into_data() {
            received += data.len() as u64;
            if received > DRAIN_CAP {
                return None;
            }
        }
    }
    Some(received)
}

/// Parses a body into `T` in one pass, reporting where it went wrong the way FastAPI does.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let first = bytes.iter().find(|byte| !byte.is_ascii_whitespace());
    if first.is_some_and(|byte| *byte != b'{') {
        // Serde would read a struct from an array positionally; an API body is an object or nothing.
        return Err(Error::validation(Invalid {
            input: serde_json::from_slice(bytes).unwrap_or(Value::Null),
            ..Invalid::new(
                "model_attributes_type",
                vec![json!("body")],
                "Input should be a valid dictionary or object",
            )
        }));
    }
    let syntax_error = |error: &serde_json::Error| {
        Error::validation(Invalid {
            input: json!({}),
            ..Invalid::new(
                "json_invalid",
                vec![json!("body"), json!(error.column())],
                format!("JSON decode error: {}", strip_position(&error.to_string())),
            )
        })
    };
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let inner = error.inner();
        if inner.is_syntax() || inner.is_eof() {
            return syntax_error(inner);
        }
        let mut loc = vec![json!("body")];
        loc.extend(path_segments(error.path()));
        Error::validation(describe(loc, &inner.to_string()))
    })?;
    deserializer.end().map_err(|error| syntax_error(&error))?;
    Ok(value)
}

/// A query string parsed into `T`; failures are 422 with `loc: ["query", field]`. A comma-list parameter
/// ([`LIST_PARAMETERS`]) may also be repeated, as HTTP clients send a list (`tags=a&tags=b`, the SDK's
/// `list_packets(tags=[...])`): its values are joined into one comma list. Any other parameter given twice is
/// 422 "Field given more than once".
pub struct ApiQuery<T>(pub T);

/// The query parameters that hold comma lists.
const LIST_PARAMETERS: [&str; 2] = ["tags", "status"];

/// `query` with each repeated list parameter given once, its values joined by commas; None when no list
/// parameter repeats.
fn join_repeated_lists(query: &str) -> Option<String> {
    let pairs: Vec<_> = form_urlencoded::parse(query.as_bytes()).collect();
    let repeats = |name: &str| pairs.iter().filter(|(key, _)| key == name).count() > 1;
    if !LIST_PARAMETERS.iter().any(|name| repeats(name)) {
        return None;
    }
    let mut joined = form_urlencoded::Serializer::new(String::new());
    let mut written = Vec::new();
    for (key, value) in &pairs {
        if !LIST_PARAMETERS.contains(&key.as_ref()) {
            joined.append_pair(key, value);
        } else if !written.contains(key) {
            let values: Vec<&str> = pairs
                .iter()
                .filter(|(other, _)| other == key)
                .map(|(_, value)| value.as_ref())
                .collect();
            joined.append_pair(key, &values.join(","));
            written.push(key.clone());
        }
    }
    Some(joined.finish())
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let joined = join_repeated_lists(query);
        let query = joined.as_deref().unwrap_or(query);
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            let name = name.replace('\0', "\\u0000");
            super::storable::check_text(&value, &[json!("query"), json!(name)])?;
            super::storable::check_text(&name, &[json!("query"), json!(name)])?;
        }
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(ApiQuery)
            .map_err(|error| {
                let mut loc = vec![json!("query")];
                loc.extend(path_segments(error.path()));
                Error::validation(describe(loc, &error.inner().to_string()))
            })
    }
}

/// An optional query parameter, trimmed; empty counts as absent.
pub fn non_empty(value: Option<String>) -> Option<String> {
    value
        .map(|text| text.trim().to_string())
        .filter(|text| !text.is_empty())
}

/// A tenant id path parameter (`{tenant_id}`): text both databases can store, else 422.
pub struct TenantPath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for TenantPath {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| Error::BadRequest("Invalid path".into()))?;
        super::storable::check_text(&id, &[json!("path"), json!("tenant_id")])?;
        Ok(TenantPath(id))
    }
}

/// A UUID path parameter (`{packet_id}`, `{key_id}`); anything else is 422 as in the reference.
pub struct PathId(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(params) = Path::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|_| Error::BadRequest("Invalid path".into()))?;
        let (name, raw) = params
            .into_iter()
            .next()
            .ok_or_else(|| Error::BadRequest("Invalid path".into()))?;
        Uuid::parse_str(&raw).map(PathId).map_err(|error| {
            Error::validation(Invalid {
                input: Value::String(raw.clone()),
                ..Invalid::new(
                    "uuid_parsing",
                    vec![json!("path"), json!(name)],
                    format!("Input should be a valid UUID, {error}"),
                )
            })
        })
    }
}

fn path_segments(path: &serde_path_to_error::Path) -> Vec<Value> {
    use serde_path_to_error::Segment;
    path.iter()
        .filter_map(|segment| match segment {
            Segment::Seq { index } => Some(json!(index)),
            Segment::Map { key } => Some(json!(key)),
            Segment::Enum { variant } => Some(json!(variant)),
            Segment::Unknown => None,
        })
        .collect()
}

/// Classifies a serde message into a FastAPI-style entry.
fn describe(mut loc: Vec<Value>, message: &str) -> Invalid {
    let message = strip_position(message);
    if let Some(field) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
    {
        loc.push(json!(field));
        return Invalid::new("missing", loc, "Field required");
    }
    if let Some(field) = message
        .strip_prefix("duplicate field `")
        .and_then(|rest| rest.split('`').next())
    {
        loc.push(json!(field));
        return Invalid::new("value_error", loc, "Field given more than once");
    }
    if message.starts_with("unknown variant") {
        return Invalid::new(
            "enum",
            loc,
            format!("Input should be {}", expected_variants(&message)),
        );
    }
    if message.starts_with("invalid type") {
        return Invalid::new("type_error", loc, message);
    }
    Invalid::new("value_error", loc, message)
}

/// "unknown variant `x`, expected one of `a`, `b`" → "'a' or 'b'".
fn expected_variants(message: &str) -> String {
    let expected = message
        .split_once("expected ")
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let names: Vec<String> = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|name| format!("'{name}'"))
        .collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        Some((last, _)) => last.clone(),
        None => expected.to_string(),
    }
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message[..index].to_string(),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_list_parameters_are_joined_in_place() {
        assert_eq!(join_repeated_lists("tags=a&limit=5"), None);
        assert_eq!(
            join_repeated_lists("tags=a&limit=5&tags=b%2Cc&status=created").as_deref(),
            Some("tags=a%2Cb%2Cc&limit=5&status=created")
        );
        assert_eq!(
            join_repeated_lists("status=x&status=y&priority=1&priority=2").as_deref(),
            Some("status=x%2Cy&priority=1&priority=2"),
            "other parameters are left to refuse their repeats"
        );
    }

    #[test]
    fn serde_messages_become_fastapi_entries() {
        let missing = describe(
            vec![json!("body")],
            "missing field `summary` at line 1 column 2",
        );
        assert_eq!(missing.kind, "missing");
        assert_eq!(missing.loc, vec![json!("body"), json!("summary")]);
        let variant = describe(
            vec![],
            "unknown variant `urgent`, expected one of `low`, `normal`, `high`, `critical`",
        );
        assert_eq!(variant.kind, "enum");
        assert_eq!(
            variant.msg,
            "Input should be 'low', 'normal', 'high' or 'critical'"
        );
        let wrong = describe(vec![], "invalid type: integer `5`, expected a string");
        assert_eq!(wrong.kind, "type_error");
    }
}
