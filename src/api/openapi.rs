//! The OpenAPI 3.1 document (docs/api.md decision 11): its frame here, its paths and schemas from the `#[utoipa::path]`
//! annotations of the handlers that the router is built from.

use super::{api_routes, root_routes, AppState};
use crate::records::import_schema::{HarDocument, ImportDocument};
use serde_json::Value;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::ToSchema;
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

/// The document's frame; the paths and schemas come from the routes themselves.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "HandoffRail",
        description = "Handoff packets, intercepted evidence and claim verification for multi-agent AI systems. \
            Every `/api/v1` route needs an `X-API-Key` header; every error is a JSON object with `detail`. \
            Everything stored is refused with 422 when it holds text with NUL (U+0000) — in a body, object keys \
            included, or in a query — or a number beyond 1000 decimal places either side.",
    ),
    modifiers(&ApiKeySecurity),
    security(("api_key" = [])),
    tags(
        (name = "packets", description = "Handoff packets and their lifecycle"),
        (name = "batch", description = "Up to 50 packets per call, each applied on its own"),
        (name = "keys", description = "API keys (admin)"),
        (name = "tenants", description = "Tenants (admin, global)"),
        (name = "schemas", description = "JSON Schemas for packet contexts"),
        (name = "audit", description = "The tenant's audit log"),
        (name = "stats", description = "Packet statistics and system health (admin)"),
        (name = "records", description = "Evidence recorded by the proxy"),
        (name = "evaluations", description = "Claims verified against evidence"),
        (name = "trust", description = "Trusted endpoints"),
        (name = "operations", description = "Health, readiness, metrics and this document"),
    )
)]
struct ApiDoc;

struct ApiKeySecurity;

impl Modify for ApiKeySecurity {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
    }
}

/// `/openapi.json`'s body: an OpenAPI 3.1 document, as its own specification describes it.
pub struct OpenApiDocument;
crate::records::import_schema::schema_written_by_the_document!(OpenApiDocument);

/// The schemas that `schema_written_by_the_document!` types stand for.
fn written_schemas() -> [(std::borrow::Cow<'static, str>, Value); 3] {
    use crate::records::import_schema;
    [
        (ImportDocument::name(), import_schema::document()),
        (HarDocument::name(), import_schema::har_document()),
        (
            OpenApiDocument::name(),
            serde_json::json!({
                "description": "An OpenAPI 3.1 document (https://spec.openapis.org/oas/v3.1.0)",
                "type": "object",
                "required": ["openapi", "info", "paths"],
                "properties": {
                    "openapi": {"type": "string", "pattern": "^3\\.1\\.\\d+$"},
                    "info": {"type": "object", "required": ["title", "version"],
                        "properties": {"title": {"type": "string"}, "version": {"type": "string"}}},
                    "paths": {"type": "object", "additionalProperties": {"type": "object"}},
                    "components": {"type": "object", "additionalProperties": {"type": "object"}},
                    "security": {"type": "array", "items": {"type": "object"}},
                    "tags": {"type": "array", "items": {"type": "object"}},
                },
            }),
        ),
    ]
}

/// The OpenAPI 3.1 document of every route [`super::router`] serves, as JSON: both are built from the same
/// registrations, so a route cannot be served without being documented.
pub fn document() -> Value {
    let mut document = serde_json::to_value(openapi()).unwrap_or_default();
    if let Some(schemas) = document
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for (name, schema) in written_schemas() {
            schemas.insert(name.into(), schema);
        }
        state_rules_across_fields(schemas);
    }
    spell_out_formats(&mut document);
    document
}

/// Rules that tie one field to another, which a derived schema cannot state.
fn state_rules_across_fields(schemas: &mut serde_json::Map<String, Value>) {
    // `HitlCheckpoint::lacks_reason`: not required, or a reason.
    if let Some(Value::Object(hitl)) = schemas.get_mut("HitlCheckpoint") {
        hitl.insert(
            "anyOf".into(),
            serde_json::json!([
                {"required": ["required"], "properties": {"required": crate::lax::false_schema()}},
                {"properties": {"reason": {"minLength": 1}}},
            ]),
        );
    }
}

/// What the server checks of a `uuid` (any form `Uuid::parse_str` reads: simple, hyphenated, braced, URN)
/// and of a `byte` string (standard base64, canonical padding and trailing bits).
pub const UUID_PATTERN: &str = "^(?:[0-9a-fA-F]{32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\
    |\\{[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\\}\
    |urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$";
pub const BASE64_PATTERN: &str =
    "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?$";

/// JSON Schema formats are annotations a validator or generator may ignore; the server enforces `uuid`,
/// `byte` and `int64`, so every schema with one of them also carries the equivalent `pattern` or bounds
/// (written exactly: as doubles, `i64::MAX` would round up), and the document states what is refused.
fn spell_out_formats(node: &mut Value) {
    match node {
        Value::Object(object) => {
            if object.get("format").and_then(Value::as_str) == Some("int64") {
                object.entry("minimum").or_insert(Value::from(i64::MIN));
                object.entry("maximum").or_insert(Value::from(i64::MAX));
            }
            let pattern = match object.get("format").and_then(Value::as_str) {
                Some("uuid") => Some(UUID_PATTERN),
                Some("byte") => Some(BASE64_PATTERN),
                _ => None,
            };
            if let Some(pattern) = pattern {
                object
                    .entry("pattern")
                    .or_insert_with(|| Value::from(pattern));
            }
            object.values_mut().for_each(spell_out_formats);
        }
        Value::Array(items) => items.iter_mut().for_each(spell_out_formats),
        _ => {}
    }
}

fn openapi() -> utoipa::openapi::OpenApi {
    let mut document = OpenApiRouter::<AppState>::with_openapi(ApiDoc::openapi())
        .nest("/api/v1", api_routes())
        .merge(root_routes())
        .into_openapi();
    document_error_answers(&mut document);
    // Handlers are named for what they do within their module (`create`, `list`); prefixed with the
    // tag, the operation ids are unique across the document, as OpenAPI requires.
    for item in document.paths.paths.values_mut() {
        for operation in operations(item) {
            let tag = operation
                .tags
                .as_ref()
                .and_then(|tags| tags.first())
                .cloned();
            if let (Some(tag), Some(id)) = (tag, operation.operation_id.as_mut()) {
                *id = format!("{tag}_{id}");
            }
        }
    }
    document
}

/// The answers every API route can give besides its own, added where a handler's annotation does not
/// name them: the gate's (401 without a valid key, 403 below the route's role or scope, 429 over a rate
/// limit, 503 while the database is down), the extractors' (422 for a body, query or path that does not
/// parse, 413 for a body over the tier's limit, 400 for a malformed cursor or transition) and 404 for a
/// path naming an object. Every one of them is `ErrorBody`, whose `detail` is a text, a list of problems or
/// an object, as sent.
fn document_error_answers(document: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::content::ContentBuilder;
    use utoipa::openapi::response::ResponseBuilder;
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Type};
    use utoipa::openapi::Ref;

    let components = document.components.get_or_insert_with(Default::default);
    let detail = OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::String))
        .item(ArrayBuilder::new().items(ObjectBuilder::new().schema_type(Type::Object)))
        .item(ObjectBuilder::new().schema_type(Type::Object));
    components.schemas.insert(
        "ErrorBody".to_string(),
        ObjectBuilder::new()
            .property("detail", detail)
            .required("detail")
            .into(),
    );
    let answer = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build()
    };
    for (path, item) in document.paths.paths.iter_mut() {
        if !path.starts_with("/api/v1") {
            continue;
        }
        let names_object = path.contains('{');
        for operation in operations(item) {
            let has_body = operation.request_body.is_some();
            let has_input = has_body
                || operation
                    .parameters
                    .as_ref()
                    .is_some_and(|parameters| !parameters.is_empty());
            let mut add = |status: &str, description: &str, applies: bool| {
                if applies {
                    operation
                        .responses
                        .responses
                        .entry(status.to_string())
                        .or_insert_with(|| answer(description).into());
                }
            };
            add(
                "400",
                "Malformed cursor, or a change the state machine forbids",
                has_input,
            );
            add("401", "Missing or unknown X-API-Key", true);
            add(
                "403",
                "The key is revoked, or its role or scope falls short",
                true,
            );
            add("404", "No such object in the caller's tenant", names_object);
            add("413", "Body over the tier's limit", has_body);
            add("422", "Invalid body, query or path", has_input);
            add(
                "429",
                "Rate limit or daily cap reached (see Retry-After)",
                true,
            );
            add("503", "The database is unavailable (see Retry-After)", true);
        }
    }
}

/// The operations of one path, whatever their method.
fn operations(
    item: &mut utoipa::openapi::PathItem,
) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    [
        &mut item.get,
        &mut item.post,
        &mut item.put,
        &mut item.patch,
        &mut item.delete,
    ]
    .into_iter()
    .flatten()
}
