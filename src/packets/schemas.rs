//! The schema registry (docs/api.md §1.5): JSON Schemas a tenant registers, and the check of a packet's `context`
//! against one of them when a create, chain or batch item names it by `schema_id` (docs/api.md §2.1, messages docs/api.md §4.3).
//!
//! Schemas are immutable (no update or delete route; a new version is a new row), so a compiled validator
//! can be cached by tenant and id for the life of the process, on every instance alike.

use super::store::SchemaStore;
use crate::persistence::StoreError;
use crate::timestamp::Timestamp;
use jsonschema::Validator;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Schema {
    pub id: Uuid,
    pub name: String,
    pub version: i64,
    pub json_schema: Value,
    pub tenant_id: String,
    pub created_at: Timestamp,
}

/// `POST /schemas`.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
pub struct SchemaCreate {
    #[schema(min_length = 1, max_length = 128, pattern = "\\S")]
    pub name: String,
    #[schema(schema_with = document_schema)]
    pub json_schema: Value,
    #[serde(default = "first_version", deserialize_with = "crate::lax::integer")]
    #[schema(minimum = 1)]
    pub version: i64,
}

/// A JSON Schema document whose `type` names JSON types: what [`check`] accepts as a start (it also
/// compiles the document, see there).
fn document_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Type};
    let json_type = || {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some([
                "null", "boolean", "object", "array", "number", "integer", "string",
            ]))
    };
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some("A JSON Schema document with a `type`"))
        .property(
            "type",
            OneOfBuilder::new().item(json_type()).item(
                ArrayBuilder::new()
                    .items(json_type())
                    .min_items(Some(1))
                    .unique_items(true),
            ),
        )
        .required("type")
        .build()
}

fn first_version() -> i64 {
    1
}

impl Schema {
    pub fn new(request: SchemaCreate, tenant: &str, now: Timestamp) -> Self {
        Self {
            id: Uuid::new_v4(),
            name: request.name,
            version: request.version,
            json_schema: request.json_schema,
            tenant_id: tenant.to_string(),
            created_at: now,
        }
    }
}

/// What is wrong with a registration, as (field, message). Besides the reference's rules (a name of 1–128
/// characters, an object with a `type` key, a version ≥ 1), the document must compile: a schema that can
/// never validate anything is refused when it is registered, not at every create that names it.
pub fn check(request: &SchemaCreate) -> Vec<(&'static str, String)> {
    let mut problems = Vec::new();
    if let Some(problem) = crate::auth::tenants::name_problem(&request.name) {
        problems.push(("name", problem));
    }
    if request.version < 1 {
        problems.push((
            "version",
            "Input should be greater than or equal to 1".to_string(),
        ));
    }
    match &request.json_schema {
        Value::Object(document) if !document.contains_key("type") => problems.push((
            "json_schema",
            "Value error, json_schema must contain a 'type' key".to_string(),
        )),
        Value::Object(_) => {
            if let Err(error) = compile(&request.json_schema) {
                problems.push((
                    "json_schema",
                    format!("Value error, json_schema is not a usable JSON Schema: {error}"),
                ));
            }
        }
        _ => problems.push((
            "json_schema",
            "Input should be a valid dictionary".to_string(),
        )),
    }
    problems
}

/// Compiles a schema document. External references are never fetched (no HTTP or file retrieval is built
/// in), so a `$ref` to another document fails here instead of reaching out from the server. `pattern` and
/// `patternProperties` use the linear-time `regex` engine with size limits — a backtracking engine would let
/// one registered pattern (`^(a+)+$`) cost seconds per validated string — so lookaround and backreferences
/// are refused at registration.
fn compile(document: &Value) -> Result<Validator, String> {
    const PATTERN_BYTES: usize = 256 * 1024;
    jsonschema::options()
        .with_pattern_options(
            jsonschema::PatternOptions::regex()
                .size_limit(PATTERN_BYTES)
                .dfa_size_limit(PATTERN_BYTES),
        )
        .build(document)
        .map_err(|error| error.to_string())
}

/// Why a context was refused; the text is the 422 `detail` of docs/api.md §4.3.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContextRejection {
    UnknownSchema(String),
    Invalid { message: String, at: String },
}

impl std::fmt::Display for ContextRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ContextRejection::UnknownSchema(id) => {
                write!(f, "Schema '{id}' not found for this tenant")
            }
            ContextRejection::Invalid { message, at } => {
                write!(f, "Context validation failed: {message} (at '{at}')")
            }
        }
    }
}

/// Why a context check could not be made or did not pass.
#[derive(Debug)]
pub enum CheckError {
    Rejected(ContextRejection),
    Store(StoreError),
}

impl From<StoreError> for CheckError {
    fn from(error: StoreError) -> Self {
        CheckError::Store(error)
    }
}

/// How many compiled schemas one process keeps; past it the cache starts over.
const CACHED_VALIDATORS: usize = 1024;

/// Compiled validators of registered schemas, by tenant and id.
#[derive(Default)]
pub struct SchemaRegistry {
    compiled: Mutex<HashMap<(String, Uuid), Arc<Validator>>>,
}

impl SchemaRegistry {
    /// Checks `context` against the tenant's schema `schema_id` (docs/api.md §2.1): unknown id or another tenant's
    /// schema → [`ContextRejection::UnknownSchema`]; the first failure → [`ContextRejection::Invalid`].
    pub async fn check_context(
        &self,
        store: &dyn SchemaStore,
        tenant: &str,
        schema_id: &str,
        context: &Value,
    ) -> Result<(), CheckError> {
        let unknown = || CheckError::Rejected(ContextRejection::UnknownSchema(schema_id.into()));
        let id = Uuid::parse_str(schema_id).map_err(|_| unknown())?;
        let validator = match self.cached(tenant, id) {
            Some(validator) => validator,
            None => {
                let schema = store.get_schema(tenant, id).await?.ok_or_else(unknown)?;
                let validator = compile(&schema.json_schema).map_err(|error| {
                    // Registered documents compiled when they were stored; only a changed engine gets here.
                    CheckError::Rejected(ContextRejection::Invalid {
                        message: format!("the schema no longer compiles: {error}"),
                        at: "root".into(),
                    })
                })?;
                self.remember(tenant, id, validator)
            }
        };
        match validator.validate(context) {
            Ok(()) => Ok(()),
            Err(error) => {
                let at = error
                    .instance_path()
                    .segments()
                    .map(|segment| segment.to_string())
                    .collect::<Vec<_>>()
                    .join(".");
                Err(CheckError::Rejected(ContextRejection::Invalid {
                    message: error.to_string(),
                    at: if at.is_empty() { "root".into() } else { at },
                }))
            }
        }
    }

    fn cached(&self, tenant: &str, id: Uuid) -> Option<Arc<Validator>> {
        let compiled = self
            .compiled
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        compiled.get(&(tenant.to_string(), id)).cloned()
    }

    fn remember(&self, tenant: &str, id: Uuid, validator: Validator) -> Arc<Validator> {
        let validator = Arc::new(validator);
        let mut compiled = self
            .compiled
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if compiled.len() >= CACHED_VALIDATORS {
            compiled.clear();
        }
        compiled.insert((tenant.to_string(), id), validator.clone());
        validator
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn patterns_run_on_the_linear_engine() {
        // Nested quantifiers are fine (no backtracking), lookaround is refused at registration.
        let nested = compile(&json!({"type": "string", "pattern": "^(a+)+$"})).expect("compiles");
        let hostile = format!("{}!", "a".repeat(10_000));
        assert!(!nested.is_valid(&json!(hostile)));
        assert!(nested.is_valid(&json!("aaaa")));
        assert!(compile(&json!({"type": "string", "pattern": "(?=a)a"})).is_err());
        assert!(compile(&json!({"type": "object", "patternProperties": {"(a)\\1": {}}})).is_err());
    }

    fn request(json_schema: Value) -> SchemaCreate {
        SchemaCreate {
            name: "order".into(),
            json_schema,
            version: 1,
        }
    }

    #[test]
    fn a_schema_needs_a_type_key_and_must_compile() {
        assert!(check(&request(json!({"type": "object"}))).is_empty());
        let missing = check(&request(json!({"properties": {}})));
        assert_eq!(missing[0].0, "json_schema");
        assert!(missing[0].1.contains("'type'"), "{missing:?}");
        let broken = check(&request(
            json!({"type": "object", "minProperties": "three"}),
        ));
        assert_eq!(broken.len(), 1, "{broken:?}");
        assert!(
            broken[0].1.contains("not a usable JSON Schema"),
            "{broken:?}"
        );
        let remote = check(&request(
            json!({"type": "object", "$ref": "https://schemas.example/order.json"}),
        ));
        assert_eq!(
            remote.len(),
            1,
            "remote references are never fetched: {remote:?}"
        );
        assert_eq!(check(&request(json!(["type"])))[0].0, "json_schema");
    }

    #[test]
    fn names_and_versions_are_bounded() {
        let mut bad = request(json!({"type": "object"}));
        bad.name = " ".into();
        bad.version = 0;
        let fields: Vec<_> = check(&bad).into_iter().map(|(field, _)| field).collect();
        assert_eq!(fields, ["name", "version"]);
        bad.name = "n".repeat(129);
        bad.version = 1;
        assert_eq!(check(&bad)[0].0, "name");
        bad.name = "n".repeat(128);
        assert!(check(&bad).is_empty());
    }

    #[test]
    fn rejections_read_as_the_reference_writes_them() {
        assert_eq!(
            ContextRejection::UnknownSchema("abc".into()).to_string(),
            "Schema 'abc' not found for this tenant"
        );
        assert_eq!(
            ContextRejection::Invalid {
                message: "\"id\" is a required property".into(),
                at: "custom".into()
            }
            .to_string(),
            "Context validation failed: \"id\" is a required property (at 'custom')"
        );
    }
}
