//! `/tenants…` (docs/api.md §1.4): admin CRUD with soft delete, names unique among live tenants (also under
//! concurrent creates), keys listed per tenant.

use crate::on_both_backends;
use crate::support::{spawn_app, Backend};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;

on_both_backends!(
    tenants_are_created_read_updated_and_soft_deleted,
    tenant_input_is_validated,
    keys_are_listed_per_tenant,
    concurrent_creates_with_one_name_make_one_tenant,
);

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("array")
        .iter()
        .map(|tenant| tenant["name"].as_str().unwrap_or("").to_string())
        .collect()
}

async fn tenants_are_created_read_updated_and_soft_deleted(backend: Backend) {
    let app = spawn_app(backend).await;
    let seeded = app.get("/tenants/default").await;
    assert_eq!(seeded.status, StatusCode::OK);
    assert_eq!(seeded.body["name"], "Default Tenant");
    assert_eq!(seeded.body["handoffs_per_day"], 10000);

    let created = app.post("/tenants", json!({"name": "Acme"})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let acme = created.body["id"].as_str().expect("id").to_string();
    assert!(uuid::Uuid::parse_str(&acme).is_ok());
    assert_eq!(
        (
            &created.body["tier"],
            &created.body["handoffs_per_day"],
            &created.body["max_api_keys"],
            &created.body["deleted_at"]
        ),
        (&json!("free"), &json!(5), &json!(5), &Value::Null)
    );
    let globex = app
        .post(
            "/tenants",
            json!({"name": "Globex", "tier": "pro", "handoffs_per_day": 500, "max_api_keys": 10}),
        )
        .await;
    assert_eq!(globex.status, StatusCode::CREATED);
    let globex_id = globex.body["id"].as_str().expect("id").to_string();
    assert_eq!(
        names(&app.get("/tenants").await.body),
        ["Globex", "Acme", "Default Tenant"],
        "newest first"
    );

    let duplicate = app.post("/tenants", json!({"name": "Acme"})).await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT);
    assert_eq!(
        duplicate.body,
        json!({"detail": "Tenant 'Acme' already exists"})
    );

    let patched = app
        .patch(
            &format!("/tenants/{acme}"),
            json!({"tier": "business", "max_api_keys": 25}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    assert_eq!(patched.body["tier"], "business");
    assert_eq!(patched.body["max_api_keys"], 25);
    assert_eq!(patched.body["name"], "Acme", "untouched fields stay");
    assert_ne!(patched.body["updated_at"], created.body["updated_at"]);
    let fetched = app.get(&format!("/tenants/{acme}")).await;
    assert_eq!(fetched.body, patched.body);
    let clash = app
        .patch(&format!("/tenants/{globex_id}"), json!({"name": "Acme"}))
        .await;
    assert_eq!(clash.status, StatusCode::CONFLICT);

    assert_eq!(
        app.delete(&format!("/tenants/{acme}")).await.status,
        StatusCode::NO_CONTENT
    );
    let gone = app.get(&format!("/tenants/{acme}")).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(
        gone.body,
        json!({"detail": format!("Tenant {acme} not found")})
    );
    assert_eq!(
        app.delete(&format!("/tenants/{acme}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.patch(&format!("/tenants/{acme}"), json!({"tier": "pro"}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        names(&app.get("/tenants").await.body),
        ["Globex", "Default Tenant"]
    );
    // The name is free again.
    assert_eq!(
        app.post("/tenants", json!({"name": "Acme"})).await.status,
        StatusCode::CREATED
    );
}

async fn tenant_input_is_validated(backend: Backend) {
    let app = spawn_app(backend).await;
    for body in [
        json!({}),
        json!({"name": ""}),
        json!({"name": "   "}),
        json!({"name": "x".repeat(129)}),
        json!({"name": "ok", "handoffs_per_day": -1}),
        json!({"name": "ok", "max_api_keys": "many"}),
        json!({"name": 7}),
    ] {
        let reply = app.post("/tenants", body.clone()).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(reply.body["detail"].is_array(), "{}", reply.text);
    }
    assert_eq!(
        app.post("/tenants", json!({"name": "x".repeat(128)}))
            .await
            .status,
        StatusCode::CREATED
    );
    let reply = app.patch("/tenants/default", json!({"name": ""})).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    let writer = app.key("writer", None).await;
    for (method, path) in [(Method::GET, "/tenants"), (Method::GET, "/tenants/default")] {
        let reply = app.send(method, path, Some(&writer), None).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{path}");
    }
}

async fn keys_are_listed_per_tenant(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.post("/tenants", json!({"name": "Initech"})).await.body["id"]
        .as_str()
        .expect("id")
        .to_string();
    let key = app
        .post(
            "/keys",
            json!({"name": "initech agent", "tenant_id": tenant, "role": "agent"}),
        )
        .await;
    assert_eq!(key.status, StatusCode::CREATED);
    let listed = app.get(&format!("/tenants/{tenant}/keys")).await;
    assert_eq!(listed.status, StatusCode::OK);
    let keys = listed.body.as_array().expect("array");
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["name"], "initech agent");
    assert_eq!(keys[0]["key"], Value::Null, "plaintext is never listed");
    assert_eq!(keys[0]["tenant_id"], tenant.as_str());
    let unknown = app.get("/tenants/no-such-tenant/keys").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

async fn concurrent_creates_with_one_name_make_one_tenant(backend: Backend) {
    let app = Arc::new(spawn_app(backend).await);
    let mut racers = Vec::new();
    for _ in 0..12 {
        let app = app.clone();
        racers.push(tokio::spawn(async move {
            app.post("/tenants", json!({"name": "Contested"}))
                .await
                .status
        }));
    }
    let mut statuses = Vec::new();
    for racer in racers {
        statuses.push(racer.await.expect("racer"));
    }
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CONFLICT)
            .count(),
        11,
        "{statuses:?}"
    );
    let listed = names(&app.get("/tenants").await.body);
    assert_eq!(listed.iter().filter(|name| *name == "Contested").count(), 1);
}
