//! `/schemas…` (docs/api.md §1.5) and `schema_id` on create, chain and batch (docs/api.md §2.1, messages docs/api.md §4.3): registration
//! rules, tenant scoping, paging, and contexts checked against the registered document.

use crate::on_both_backends;
use crate::support::{packet_body, spawn_app, Backend};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

on_both_backends!(
    schemas_are_registered_listed_and_read,
    registrations_are_validated,
    schemas_belong_to_their_tenant,
    contexts_are_checked_on_create_chain_and_batch,
);

fn order_schema() -> Value {
    json!({
        "type": "object",
        "required": ["summary", "custom"],
        "properties": {
            "summary": {"type": "string", "minLength": 3},
            "custom": {
                "type": "object",
                "required": ["order_id"],
                "properties": {
                    "order_id": {"type": "string", "pattern": "^ord_[0-9]+$"},
                    "lines": {"type": "array", "items": {"type": "object", "required": ["sku"]}}
                }
            }
        }
    })
}

fn with_context(schema_id: &str, context: Value) -> Value {
    let mut body = packet_body("planner", "worker", "unused");
    body["context"] = context;
    body["schema_id"] = json!(schema_id);
    body
}

async fn schemas_are_registered_listed_and_read(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app
        .post(
            "/schemas",
            json!({"name": "order", "json_schema": order_schema()}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.body["id"].as_str().expect("id").to_string();
    assert!(uuid::Uuid::parse_str(&id).is_ok());
    assert_eq!(created.body["name"], "order");
    assert_eq!(created.body["version"], 1, "version defaults to 1");
    assert_eq!(created.body["json_schema"], order_schema());
    assert_eq!(created.body["tenant_id"], "default");
    assert!(created.body["created_at"]
        .as_str()
        .is_some_and(|at| at.ends_with('Z')));

    let fetched = app.get(&format!("/schemas/{id}")).await;
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(fetched.body, created.body);
    assert_eq!(
        serde_json::to_string(&fetched.body["json_schema"]).expect("text"),
        serde_json::to_string(&order_schema()).expect("text"),
        "the document comes back as sent, key order included"
    );

    let second = app
        .post(
            "/schemas",
            json!({"name": "order", "json_schema": {"type": "object"}, "version": 2}),
        )
        .await;
    assert_eq!(
        second.status,
        StatusCode::CREATED,
        "duplicate names are versions"
    );
    for n in 0..3 {
        let reply = app
            .post(
                "/schemas",
                json!({"name": format!("extra {n}"), "json_schema": {"type": "string"}}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED);
    }
    let list = app.get("/schemas?limit=2&offset=1").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert_eq!(
        (
            &list.body["total"],
            &list.body["limit"],
            &list.body["offset"]
        ),
        (&json!(5), &json!(2), &json!(1))
    );
    let names: Vec<_> = list.body["schemas"]
        .as_array()
        .expect("schemas")
        .iter()
        .map(|schema| schema["name"].as_str().expect("name").to_string())
        .collect();
    assert_eq!(
        names,
        ["extra 1", "extra 0"],
        "newest first, after the offset"
    );
    let everything = app.get("/schemas").await;
    assert_eq!(everything.body["limit"], 50);
    assert_eq!(everything.body["schemas"].as_array().map(Vec::len), Some(5));

    let unknown = uuid::Uuid::new_v4();
    let missing = app.get(&format!("/schemas/{unknown}")).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(
        missing.body,
        json!({"detail": format!("Schema {unknown} not found")})
    );
    for bad in [
        "/schemas?limit=0",
        "/schemas?limit=201",
        "/schemas?offset=-1",
    ] {
        assert_eq!(
            app.get(bad).await.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}"
        );
    }
}

async fn registrations_are_validated(backend: Backend) {
    let app = spawn_app(backend).await;
    let cases = [
        (
            json!({"name": "", "json_schema": {"type": "object"}}),
            "name",
        ),
        (
            json!({"name": "n".repeat(129), "json_schema": {"type": "object"}}),
            "name",
        ),
        (
            json!({"name": "x", "json_schema": {"properties": {}}}),
            "json_schema",
        ),
        (json!({"name": "x", "json_schema": "object"}), "json_schema"),
        (
            json!({"name": "x", "json_schema": {"type": "object"}, "version": 0}),
            "version",
        ),
        (
            json!({"name": "x", "json_schema": {"type": "no-such-type"}}),
            "json_schema",
        ),
        (
            json!({"name": "x", "json_schema": {"type": "object", "$ref": "http://127.0.0.1:9/s.json"}}),
            "json_schema",
        ),
        (json!({"json_schema": {"type": "object"}}), "name"),
    ];
    for (body, field) in cases {
        let reply = app.post("/schemas", body.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            reply.text
        );
        let fields: Vec<_> = reply.body["detail"]
            .as_array()
            .expect("list envelope")
            .iter()
            .map(|issue| issue["loc"][1].clone())
            .collect();
        assert!(fields.contains(&json!(field)), "{body}: {}", reply.text);
    }
    assert_eq!(
        app.get("/schemas").await.body["total"],
        0,
        "nothing was stored"
    );
}

async fn schemas_belong_to_their_tenant(backend: Backend) {
    let app = spawn_app(backend).await;
    let other = app.key("writer", Some("acme")).await;
    let ours = app
        .post(
            "/schemas",
            json!({"name": "order", "json_schema": order_schema()}),
        )
        .await;
    let id = ours.body["id"].as_str().expect("id").to_string();
    let read = app
        .send(Method::GET, &format!("/schemas/{id}"), Some(&other), None)
        .await;
    assert_eq!(
        read.status,
        StatusCode::NOT_FOUND,
        "another tenant's schema is unknown"
    );
    let listed = app.send(Method::GET, "/schemas", Some(&other), None).await;
    assert_eq!(listed.body["total"], 0);
    let create = app
        .send(
            Method::POST,
            "/packets",
            Some(&other),
            Some(with_context(
                &id,
                json!({"summary": "order", "custom": {"order_id": "ord_1"}}),
            )),
        )
        .await;
    assert_eq!(create.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        create.body,
        json!({"detail": format!("Schema '{id}' not found for this tenant")})
    );
}

async fn contexts_are_checked_on_create_chain_and_batch(backend: Backend) {
    let app = spawn_app(backend).await;
    let registered = app
        .post(
            "/schemas",
            json!({"name": "order", "json_schema": order_schema()}),
        )
        .await;
    let id = registered.body["id"].as_str().expect("id").to_string();
    let good =
        json!({"summary": "ship it", "custom": {"order_id": "ord_42", "lines": [{"sku": "A"}]}});

    let created = app.post("/packets", with_context(&id, good.clone())).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert!(
        created.body.get("schema_id").is_none(),
        "schema_id is not echoed"
    );
    let parent = created.body["id"].as_str().expect("id").to_string();

    let refusals = [
        (
            json!({"summary": "ship it", "custom": {}}),
            "Context validation failed: \"order_id\" is a required property (at 'custom')",
        ),
        (
            json!({"summary": "ship it", "custom": {"order_id": "42"}}),
            "Context validation failed: \"42\" does not match \"^ord_[0-9]+$\" (at 'custom.order_id')",
        ),
        (
            json!({"summary": "ship it", "custom": {"order_id": "ord_1", "lines": [{"sku": "A"}, {}]}}),
            "Context validation failed: \"sku\" is a required property (at 'custom.lines.1')",
        ),
        (
            json!({"summary": "no"}),
            "Context validation failed: \"no\" is shorter than 3 characters (at 'summary')",
        ),
    ];
    for (context, detail) in &refusals {
        let reply = app
            .post("/packets", with_context(&id, context.clone()))
            .await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{context}");
        assert_eq!(reply.body, json!({"detail": detail}), "{context}");
        let chained = app
            .post(
                &format!("/packets/{parent}/chain"),
                with_context(&id, context.clone()),
            )
            .await;
        assert_eq!(
            chained.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "chain {context}"
        );
        assert_eq!(chained.body, json!({"detail": detail}), "chain {context}");
    }
    let root = app
        .post(
            "/schemas",
            json!({"name": "strict", "json_schema": {"type": "object", "maxProperties": 2}}),
        )
        .await;
    let strict = root.body["id"].as_str().expect("id").to_string();
    let at_root = app
        .post("/packets", with_context(&strict, good.clone()))
        .await;
    assert_eq!(at_root.status, StatusCode::UNPROCESSABLE_ENTITY);
    let detail = at_root.body["detail"].as_str().expect("text detail");
    assert!(
        detail.starts_with("Context validation failed: ") && detail.ends_with("(at 'root')"),
        "defaults are filled in before the check (four keys): {detail}"
    );

    for unknown in [uuid::Uuid::new_v4().to_string(), "not-a-uuid".to_string()] {
        let reply = app
            .post("/packets", with_context(&unknown, good.clone()))
            .await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            reply.body,
            json!({"detail": format!("Schema '{unknown}' not found for this tenant")})
        );
    }

    let chained = app
        .post(
            &format!("/packets/{parent}/chain"),
            with_context(&id, good.clone()),
        )
        .await;
    assert_eq!(chained.status, StatusCode::CREATED, "{}", chained.text);

    let batch = app
        .post(
            "/packets/batch",
            json!({"packets": [
                with_context(&id, good.clone()),
                with_context(&id, refusals[0].0.clone()),
                with_context(&uuid::Uuid::new_v4().to_string(), good.clone()),
            ]}),
        )
        .await;
    assert_eq!(batch.status, StatusCode::CREATED, "{}", batch.text);
    assert_eq!(batch.body["created"].as_array().map(Vec::len), Some(1));
    let errors: Vec<_> = batch.body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|error| {
            (
                error["index"].clone(),
                error["error"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(errors.len(), 2, "{}", batch.text);
    assert_eq!(errors[0].0, 1);
    assert!(errors[0].1.contains(refusals[0].1), "{errors:?}");
    assert_eq!(errors[1].0, 2);
    assert!(
        errors[1].1.contains("not found for this tenant"),
        "{errors:?}"
    );

    let total = app.get("/packets").await.body["total"].clone();
    assert_eq!(total, 3, "refused packets were not stored");
}
