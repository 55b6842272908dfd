//! The body of `POST /records` as the OpenAPI document shows it: exactly what [`super::import`] reads — a
//! HAR 1.2 document (`log.entries`, see [`super::har`]) or `{"records": [...]}` of records as exported, each
//! with its seal when it has one. Fields the importer ignores (HAR's `cookies`, `timings`, `cache`, …) are
//! allowed and not described.

use super::import::MAX_IMPORT;
use serde_json::{json, Value};

/// Declares `$type` a body whose schema utoipa's model cannot hold: the routes name it, and the OpenAPI
/// document writes its schema in the placeholder's place (`api::openapi::written_schemas`). Its schema brings
/// the records' with it, which the written schemas refer to.
macro_rules! schema_written_by_the_document {
    ($type:ident) => {
        impl utoipa::PartialSchema for $type {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new().into()
            }
        }

        impl utoipa::ToSchema for $type {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed(stringify!($type))
            }

            fn schemas(
                schemas: &mut Vec<(
                    String,
                    utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
                )>,
            ) {
                use crate::records::model::{Record, Seal};
                use utoipa::PartialSchema;
                schemas.push((Record::name().into(), Record::schema()));
                schemas.push((Seal::name().into(), Seal::schema()));
                Record::schemas(schemas);
            }
        }
    };
}
pub(crate) use schema_written_by_the_document;

/// `POST /records`: a HAR document or records. utoipa's schema model cannot hold all of JSON Schema (`not`,
/// `items` beside other keywords), so the route names this type and the OpenAPI document puts [`document`]
/// in its place.
pub struct ImportDocument;
schema_written_by_the_document!(ImportDocument);

/// `GET /records/export`'s HAR 1.2 document; the OpenAPI document puts [`har_document`] in its place.
pub struct HarDocument;
schema_written_by_the_document!(HarDocument);

/// The schema of [`ImportDocument`].
pub fn document() -> Value {
    json!({
        "description": "A HAR 1.2 document, or records as `GET /records/export?format=jsonl` writes them",
        "oneOf": [har_document(), records_document()],
    })
}

/// The HAR 1.2 document as the importer reads it and the export writes it (the export writes `time: -1` for an
/// elapsed time the import would refuse; the sealed record it embeds keeps the timings as stored).
pub fn har_document() -> Value {
    json!({
        "title": "HAR",
        "type": "object",
        "required": ["log"],
        "properties": {"log": {
            "type": "object",
            "required": ["entries"],
            "properties": {"entries": {"type": "array", "maxItems": MAX_IMPORT, "items": har_entry()}},
        }},
    })
}

fn records_document() -> Value {
    json!({
        "title": "Records",
        "type": "object",
        "required": ["records"],
        "not": {"required": ["log"]},
        "properties": {"records": {
            "type": "array",
            "maxItems": MAX_IMPORT,
            "items": {"allOf": [
                {"$ref": "#/components/schemas/Record"},
                {"type": "object", "properties": {
                    "method": {"type": "string", "minLength": 1},
                    "url": {"type": "string", "format": "uri"},
                    "seal": {"$ref": "#/components/schemas/Seal"},
                }},
            ]},
        }},
    })
}

/// An entry: `startedDateTime`, a request with method and absolute URL, a response; `-1`/`0` and other
/// out-of-range `time` and `status` values mean "unknown". `_handoffrail` carries our fields, and the sealed
/// record when the entry came from our export.
fn har_entry() -> Value {
    let text = json!({"type": ["string", "null"]});
    json!({
        "type": "object",
        "required": ["startedDateTime", "request", "response"],
        "properties": {
            "startedDateTime": {"type": "string", "format": "date-time"},
            "time": {
                "type": ["number", "null"],
                "description": "Milliseconds; -1 when unknown",
                "anyOf": [{"const": -1}, {"minimum": 0, "maximum": super::har::MAX_ELAPSED_MS}, {"type": "null"}],
            },
            "request": {
                "type": "object",
                "required": ["method", "url"],
                "properties": {
                    "method": {"type": "string", "minLength": 1},
                    "url": {"type": "string", "format": "uri"},
                    "headers": har_headers(),
                    "postData": har_body(),
                },
            },
            "response": {
                "type": "object",
                "properties": {
                    "status": {"type": ["integer", "null"], "description": "100-599; others (HAR's 0) mean none"},
                    "headers": har_headers(),
                    "content": har_body(),
                    "_error": text,
                },
            },
            "_handoffrail": {
                "type": ["object", "null"],
                "properties": {
                    "run_id": text,
                    "agent_id": text,
                    "action": text,
                    "upstream_error": text,
                    "record": {"allOf": [
                        {"$ref": "#/components/schemas/Record"},
                        {"type": "object", "required": ["seal"], "properties": {"seal": {"$ref": "#/components/schemas/Seal"}}},
                    ]},
                },
            },
        },
    })
}

fn har_headers() -> Value {
    json!({
        "type": ["array", "null"],
        "items": {
            "type": "object",
            "required": ["name", "value"],
            "properties": {"name": {"type": "string"}, "value": {"type": "string"}},
        },
    })
}

/// `postData` or `content`: `text`, standard base64 when `encoding` is `base64`.
fn har_body() -> Value {
    json!({"oneOf": [
        {"type": "null"},
        {
            "type": "object",
            "properties": {"text": {"type": ["string", "null"]}, "encoding": {"type": "null"}},
        },
        {
            "type": "object",
            "required": ["encoding"],
            "properties": {
                "text": {"type": ["string", "null"], "format": "byte"},
                "encoding": {"const": "base64"},
            },
        },
    ]})
}
