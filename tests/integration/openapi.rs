//! `/openapi.json` (docs/api.md decision 11): an OpenAPI 3.1 document that parses, whose references all resolve, and
//! whose operations are exactly the routes the server answers.

use crate::on_both_backends;
use crate::rbac::ROUTES;
use crate::support::{spawn_app, Backend};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeSet;

on_both_backends!(
    the_document_lists_exactly_the_routes_served,
    every_body_is_typed
);

/// `{anything}` → `{id}`, so the document's parameter names compare with the route table's.
fn normalized(path: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for character in path.chars() {
        match character {
            '{' => {
                inside = true;
                out.push_str("{id}");
            }
            '}' => inside = false,
            _ if inside => {}
            _ => out.push(character),
        }
    }
    out
}

fn references(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner) {
                    ("$ref", Value::String(target)) => found.push(target.clone()),
                    _ => references(inner, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| references(item, found)),
        _ => {}
    }
}

async fn the_document_lists_exactly_the_routes_served(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::OK, "no key needed");
    assert!(response
        .headers()
        .get("content-type")
        .is_some_and(|value| value == "application/json"));
    let document: Value = response.json().await.expect("the document is JSON");
    assert_eq!(document["openapi"], "3.1.0");
    assert_eq!(document["info"]["title"], "HandoffRail");
    assert_eq!(
        document["components"]["securitySchemes"]["api_key"],
        json!({"type": "apiKey", "in": "header", "name": "X-API-Key"})
    );

    let mut targets = Vec::new();
    references(&document, &mut targets);
    assert!(!targets.is_empty());
    for target in targets {
        let name = target
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected reference {target}"));
        assert!(
            document["components"]["schemas"][name].is_object(),
            "{target} resolves"
        );
    }

    let paths = document["paths"].as_object().expect("paths");
    let mut documented = BTreeSet::new();
    let mut operation_ids = BTreeSet::new();
    for (path, operations) in paths {
        for (method, operation) in operations.as_object().expect("path item") {
            let responses = operation["responses"].as_object().expect("responses");
            for (status, response) in responses {
                assert!(
                    response["description"].is_string(),
                    "{method} {path} {status} is described"
                );
            }
            let id = operation["operationId"].as_str().expect("operation id");
            assert!(
                operation_ids.insert(id.to_string()),
                "operation id {id} is unique"
            );
            documented.insert((method.to_uppercase(), normalized(path)));
        }
    }
    let mut expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(method, path, _)| (method.to_string(), format!("/api/v1{path}")))
        .collect();
    for path in [
        "/health",
        "/ready",
        "/metrics",
        "/openapi.json",
        "/events",
        "/ws",
    ] {
        expected.insert(("GET".into(), path.into()));
    }
    assert_eq!(
        documented, expected,
        "the document and the route table agree"
    );

    let id = uuid::Uuid::new_v4().to_string();
    for (method, path) in &documented {
        let url = app.url(&path.replace("{id}", &id));
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = app
            .http
            .request(method.clone(), &url)
            .header("X-API-Key", &app.admin_key);
        if matches!(method, Method::POST | Method::PATCH) {
            request = request.json(&json!({}));
        }
        let reply = request.send().await.expect("sent");
        let status = reply.status();
        let body: Value = reply.json().await.unwrap_or(Value::Null);
        assert_ne!(
            status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path} is served"
        );
        assert!(
            !(status == StatusCode::NOT_FOUND && body == json!({"detail": "Not Found"})),
            "{method} {path} is served, not the router's fallback"
        );
    }
    let undocumented = app
        .send(
            Method::PUT,
            "/packets",
            Some(&app.admin_key),
            Some(json!({})),
        )
        .await;
    assert_eq!(undocumented.status, StatusCode::METHOD_NOT_ALLOWED);
}

/// `schema` with its `$ref` followed (one level of components, as the document writes them).
fn resolved<'a>(document: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(target) => {
            let name = target.trim_start_matches("#/components/schemas/");
            &document["components"]["schemas"][name]
        }
        None => schema,
    }
}

/// An object schema that says nothing of its members: `{"type": "object"}` or `{}`.
fn untyped(schema: &Value) -> bool {
    let Some(fields) = schema.as_object() else {
        return false;
    };
    let says_more = [
        "properties",
        "additionalProperties",
        "patternProperties",
        "allOf",
        "anyOf",
        "oneOf",
        "items",
        "prefixItems",
        "enum",
        "const",
    ]
    .iter()
    .any(|key| fields.contains_key(*key));
    let object_or_anything = match fields.get("type") {
        None => true,
        Some(Value::String(kind)) => kind == "object",
        Some(Value::Array(kinds)) => kinds.iter().any(|kind| kind == "object"),
        Some(_) => false,
    };
    object_or_anything && !says_more
}

/// Every request and response body of every operation names its members (the evaluator's and the records'
/// included): a client generated from the document, or a reader of it, learns what to send and what comes back.
async fn every_body_is_typed(backend: Backend) {
    let app = spawn_app(backend).await;
    let document = app.openapi_document().await;
    let mut untyped_bodies = Vec::new();
    let mut checked = 0;
    for (path, operations) in document["paths"].as_object().expect("paths") {
        for (method, operation) in operations.as_object().expect("path item") {
            let mut bodies = vec![("request".to_string(), &operation["requestBody"])];
            for (status, response) in operation["responses"].as_object().into_iter().flatten() {
                bodies.push((status.clone(), response));
            }
            for (which, body) in bodies {
                let Some(schema) = body.pointer("/content/application~1json/schema") else {
                    continue;
                };
                checked += 1;
                let schema = resolved(&document, schema);
                let items = resolved(&document, &schema["items"]);
                if untyped(schema) || (schema["type"] == "array" && untyped(items)) {
                    untyped_bodies.push(format!("{method} {path} {which}: {schema}"));
                }
            }
        }
    }
    assert!(checked > 50, "{checked} bodies checked");
    assert!(
        untyped_bodies.is_empty(),
        "bodies without members:\n{}",
        untyped_bodies.join("\n")
    );
}
