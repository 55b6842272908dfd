//! Tenants are walls (docs/api.md decision 14): every route × {the tenant's own admin, another tenant's admin, a system
//! administrator}. Another tenant's admin never reads, changes or mints keys for tenant A; a system
//! administrator manages tenants and keys but reaches A's objects no more than any other outsider; A's own
//! admin manages everything of A's, but not tenants.

use crate::on_both_backends;
use crate::rbac::{ROUTES, SYSTEM_DENIAL};
use crate::support::{spawn_app, Backend, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

on_both_backends!(
    every_route_keeps_tenants_apart,
    a_tenant_admin_mints_keys_only_for_its_own_tenant,
    only_a_system_administrator_revokes_or_rotates_a_system_key,
);

/// Tenant A's objects, one of each kind a route can name.
struct TenantA {
    tenant: String,
    admin: String,
    packet: String,
    key: String,
    schema: String,
    record: String,
    evaluation: String,
    endpoint: String,
    hook: String,
}

async fn created(app: &TestApp, key: &str, path: &str, body: Value) -> Value {
    let reply = app.send(Method::POST, path, Some(key), Some(body)).await;
    assert_eq!(
        reply.status,
        StatusCode::CREATED,
        "POST {path}: {}",
        reply.text
    );
    reply.body
}

fn text(value: &Value) -> String {
    value.as_str().expect("a string id").to_string()
}

/// A tenant with an admin key made by the system administrator; returns (tenant id, admin key).
async fn tenant_with_admin(app: &TestApp, name: &str) -> (String, String) {
    let tenant = text(&created(app, &app.admin_key, "/tenants", json!({"name": name})).await["id"]);
    let admin = created(
        app,
        &app.admin_key,
        "/keys",
        json!({"name": format!("{name} admin"), "tenant_id": tenant, "role": "admin"}),
    )
    .await;
    (tenant, text(&admin["key"]))
}

async fn tenant_a(app: &TestApp) -> TenantA {
    let (tenant, admin) = tenant_with_admin(app, "tenant-a").await;
    let packet = created(
        app,
        &admin,
        "/packets",
        crate::support::packet_body("a-src", "a-dst", "A's work"),
    )
    .await;
    let key = created(
        app,
        &admin,
        "/keys",
        json!({"name": "a writer", "role": "writer"}),
    )
    .await;
    let schema = created(
        app,
        &admin,
        "/schemas",
        json!({"name": "order", "json_schema": {"type": "object"}}),
    )
    .await;
    let import = json!({"log": {"version": "1.2", "creator": {"name": "t", "version": "1"}, "entries": [{
        "startedDateTime": "2026-11-21T10:00:00.000Z", "time": 1,
        "request": {"method": "GET", "url": "https://api.example.com/v1/orders/7", "headers": []},
        "response": {"status": 200, "headers": [], "content": {"mimeType": "application/json", "text": "{\"a\": 1}"}},
        "_handoffrail": {"run_id": "run-a", "action": "get_order"}}]}});
    let record = text(&created(app, &admin, "/records", import).await["ids"][0]);
    let evaluation = created(
        app,
        &admin,
        "/evaluations",
        json!({"claims": [{"action_name": "get_order", "verification_mode": "presence", "json_path": "$.a",
                           "record_id": record}]}),
    )
    .await;
    let endpoint = created(
        app,
        &admin,
        "/trusted-endpoints",
        json!({"url": "https://api.example.com/v1/orders/{id}", "methods": ["GET"]}),
    )
    .await;
    let hook = created(
        app,
        &admin,
        "/hooks",
        json!({"url": "https://hooks.example.com/a", "secret": "a-secret-of-16-chars"}),
    )
    .await;
    TenantA {
        hook: text(&hook["id"]),
        tenant,
        admin,
        packet: text(&packet["id"]),
        key: text(&key["id"]),
        schema: text(&schema["id"]),
        record,
        evaluation: text(&evaluation["id"]),
        endpoint: text(&endpoint["id"]),
    }
}

impl TenantA {
    /// The route's path with `{id}` naming A's object of that kind.
    fn path(&self, template: &str) -> String {
        let id = match template.split('/').nth(1) {
            Some("packets") => &self.packet,
            Some("keys") => &self.key,
            Some("tenants") => &self.tenant,
            Some("schemas") => &self.schema,
            Some("records") => &self.record,
            Some("evaluations") => &self.evaluation,
            Some("trusted-endpoints") => &self.endpoint,
            Some("hooks") if !template.contains("/dlq") => &self.hook,
            _ => "none",
        };
        template.replace("{id}", id)
    }

    /// Every id of A's that must never show through to an outsider.
    fn ids(&self) -> [&str; 8] {
        [
            &self.hook,
            &self.packet,
            &self.key,
            &self.schema,
            &self.record,
            &self.evaluation,
            &self.endpoint,
            &self.tenant,
        ]
    }

    /// Bodies that name A's objects, so that batch routes are asked about them.
    fn body(&self, method: &Method, template: &str) -> Option<Value> {
        match template {
            "/packets/batch/claim" => {
                Some(json!({"packet_ids": [self.packet], "agent_id": "x", "agent_name": "x"}))
            }
            "/packets/batch/complete" => Some(json!({"packet_ids": [self.packet]})),
            "/keys" if method == Method::POST => {
                Some(json!({"name": "k", "tenant_id": self.tenant}))
            }
            "/packets/{id}" if method == Method::PATCH => {
                Some(json!({"summary": "changed by an outsider"}))
            }
            "/tenants/{id}" if method == Method::PATCH => Some(json!({"name": "renamed"})),
            _ => matches!(*method, Method::POST | Method::PATCH).then(|| json!({})),
        }
    }
}

async fn every_route_keeps_tenants_apart(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = tenant_a(&app).await;
    let (_, other_admin) = tenant_with_admin(&app, "tenant-b").await;
    let system = app.admin_key.clone();
    for (method, template, _) in ROUTES {
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let path = a.path(template);
        let body = a.body(&method, template);
        let system_route = template.starts_with("/tenants") || template.starts_with("/system");
        for (who, key) in [
            ("other tenant's admin", &other_admin),
            ("system administrator", &system),
        ] {
            if system_route && who == "system administrator" {
                continue; // its own routes: the tenants suite covers them
            }
            let reply = app
                .send(method.clone(), &path, Some(key), body.clone())
                .await;
            let context = format!("{method} {path} as {who}: {} {}", reply.status, reply.text);
            if system_route && who == "other tenant's admin" {
                assert_eq!(reply.status, StatusCode::FORBIDDEN, "{context}");
                assert_eq!(reply.body["detail"], SYSTEM_DENIAL, "{context}");
                continue;
            }
            if *template == "/records/public-key" || *template == "/ca.pem" {
                continue; // public material
            }
            if *template == "/keys" && method == Method::POST && who == "system administrator" {
                continue; // minting keys in A is the system administrator's job (tested below)
            }
            // A batch answers each id it was asked about: "not found" echoes the id without showing anything.
            let answered_missing = reply
                .text
                .contains(&format!("Packet {} not found", a.packet));
            for id in a.ids() {
                let leaked =
                    reply.status.is_success() && reply.text.contains(id) && !answered_missing;
                assert!(!leaked, "{context} shows A's {id}");
            }
            if template.contains("{id}")
                || template.starts_with("/packets/batch/") && !template.ends_with("batch")
            {
                assert!(
                    !reply.status.is_success() || answered_missing,
                    "{context} acted on A's object"
                );
            }
            if *template == "/keys" && method == Method::POST {
                assert_eq!(reply.status, StatusCode::FORBIDDEN, "{context}");
            }
        }
    }
    // Nothing of A's changed: the packet is as created, with its summary, the key live, the endpoint there.
    let packet = app
        .send(
            Method::GET,
            &format!("/packets/{}", a.packet),
            Some(&a.admin),
            None,
        )
        .await;
    assert_eq!(packet.body["status"], "created", "{}", packet.text);
    assert_eq!(
        packet.body["context"]["summary"], "A's work",
        "{}",
        packet.text
    );
    let keys = app.send(Method::GET, "/keys", Some(&a.admin), None).await;
    assert!(
        keys.text.contains(&a.key) && !keys.text.contains(r#""revoked":true"#),
        "{}",
        keys.text
    );
    let endpoints = app
        .send(Method::GET, "/trusted-endpoints", Some(&a.admin), None)
        .await;
    assert!(endpoints.text.contains(&a.endpoint), "{}", endpoints.text);
    let tenant = app
        .send(
            Method::GET,
            &format!("/tenants/{}", a.tenant),
            Some(&system),
            None,
        )
        .await;
    assert_eq!(tenant.body["name"], "tenant-a");
    // A's own admin reaches every object of A's, and no tenant route.
    for (method, template, required) in ROUTES {
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        if method == Method::DELETE || template.ends_with("/rotate") {
            continue; // destructive; each is covered by its own suite
        }
        let path = a.path(template);
        let reply = app
            .send(
                method.clone(),
                &path,
                Some(&a.admin),
                a.body(&method, template),
            )
            .await;
        let context = format!(
            "{method} {path} as A's admin: {} {}",
            reply.status, reply.text
        );
        if *required == "system" {
            assert_eq!(reply.status, StatusCode::FORBIDDEN, "{context}");
            assert_eq!(reply.body["detail"], SYSTEM_DENIAL, "{context}");
        } else {
            assert!(
                ![
                    StatusCode::FORBIDDEN,
                    StatusCode::NOT_FOUND,
                    StatusCode::UNAUTHORIZED
                ]
                .contains(&reply.status),
                "{context}"
            );
        }
    }
}

async fn a_tenant_admin_mints_keys_only_for_its_own_tenant(backend: Backend) {
    let app = spawn_app(backend).await;
    let (a, a_admin) = tenant_with_admin(&app, "tenant-a").await;
    let (b, b_admin) = tenant_with_admin(&app, "tenant-b").await;
    // The reproducer: B's admin made an admin key in A and read A's packets with it.
    let minted = app
        .send(
            Method::POST,
            "/keys",
            Some(&b_admin),
            Some(json!({"name": "x", "tenant_id": a, "role": "admin"})),
        )
        .await;
    assert_eq!(minted.status, StatusCode::FORBIDDEN, "{}", minted.text);
    assert_eq!(minted.body["detail"], SYSTEM_DENIAL);
    let own = app
        .send(
            Method::POST,
            "/keys",
            Some(&b_admin),
            Some(json!({"name": "y", "tenant_id": b, "role": "reader"})),
        )
        .await;
    assert_eq!(own.status, StatusCode::CREATED, "{}", own.text);
    assert_eq!(own.body["tenant_id"], b.as_str());
    assert_eq!(own.body["system"], false);
    let listed = app
        .send(
            Method::GET,
            &format!("/tenants/{a}/keys"),
            Some(&b_admin),
            None,
        )
        .await;
    assert_eq!(listed.status, StatusCode::FORBIDDEN);
    let renamed = app
        .send(
            Method::PATCH,
            &format!("/tenants/{a}"),
            Some(&b_admin),
            Some(json!({"name": "mine"})),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::FORBIDDEN);
    // The system administrator mints keys in any tenant.
    let by_system = app
        .send(
            Method::POST,
            "/keys",
            Some(&app.admin_key),
            Some(json!({"name": "z", "tenant_id": a, "role": "writer"})),
        )
        .await;
    assert_eq!(by_system.status, StatusCode::CREATED, "{}", by_system.text);
    let a_keys = app.send(Method::GET, "/keys", Some(&a_admin), None).await;
    assert!(a_keys
        .text
        .contains(by_system.body["id"].as_str().unwrap_or("?")));
}

async fn only_a_system_administrator_revokes_or_rotates_a_system_key(backend: Backend) {
    let app = spawn_app(backend).await;
    // An admin of the default tenant who is not a system administrator.
    let tenant_admin = app.key("admin", None).await;
    let keys = app
        .send(Method::GET, "/keys", Some(&tenant_admin), None)
        .await;
    let system_key = keys
        .body
        .as_array()
        .into_iter()
        .flatten()
        .find(|key| key["system"] == true)
        .expect("the seeded system key");
    let id = text(&system_key["id"]);
    for (method, path) in [
        (Method::POST, format!("/keys/{id}/rotate")),
        (Method::DELETE, format!("/keys/{id}")),
    ] {
        let reply = app
            .send(method.clone(), &path, Some(&tenant_admin), None)
            .await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{method} {path}: {}",
            reply.text
        );
    }
    assert_eq!(
        app.send(Method::GET, "/tenants", Some(&app.admin_key), None)
            .await
            .status,
        StatusCode::OK
    );
}
