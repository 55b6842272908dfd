//! RBAC (docs/api.md §5.3): every route the router serves × every role, decided before the handler runs, plus the
//! paths outside the table (unknown routes need admin, operational routes need nothing).

use crate::on_both_backends;
use crate::support::{spawn_app, Backend, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::json;

pub const SYSTEM_DENIAL: &str = "This needs a system administrator's key (the bootstrap admin key or one made by `handoffrail keys create --system`)";

on_both_backends!(
    every_route_needs_its_role,
    paths_outside_the_table,
    authentication_answers_for_keys_rbac_cannot_judge,
);

/// Roles in order, then `system`: an admin key with the system administrator's scope (the bootstrap key).
const ROLES: [&str; 5] = ["reader", "agent", "writer", "admin", "system"];

/// Every route under /api/v1 (method, path with `{id}` for a path parameter) and the role it needs.
pub const ROUTES: &[(&str, &str, &str)] = &[
    ("GET", "/packets", "reader"),
    ("POST", "/packets", "writer"),
    ("GET", "/packets/awaiting", "reader"),
    ("GET", "/packets/search", "reader"),
    ("GET", "/packets/{id}", "reader"),
    ("PATCH", "/packets/{id}", "agent"),
    ("DELETE", "/packets/{id}", "writer"),
    ("POST", "/packets/{id}/claim", "agent"),
    ("POST", "/packets/{id}/respond", "agent"),
    ("POST", "/packets/{id}/verify", "writer"),
    ("GET", "/packets/{id}/history", "reader"),
    ("POST", "/packets/{id}/chain", "writer"),
    ("POST", "/packets/batch", "writer"),
    ("POST", "/packets/batch/claim", "agent"),
    ("POST", "/packets/batch/complete", "writer"),
    ("GET", "/keys", "admin"),
    ("POST", "/keys", "admin"),
    ("DELETE", "/keys/{id}", "admin"),
    ("POST", "/keys/{id}/rotate", "admin"),
    ("GET", "/tenants", "system"),
    ("POST", "/tenants", "system"),
    ("GET", "/tenants/{id}", "system"),
    ("PATCH", "/tenants/{id}", "system"),
    ("DELETE", "/tenants/{id}", "system"),
    ("GET", "/tenants/{id}/keys", "system"),
    ("GET", "/schemas", "writer"),
    ("POST", "/schemas", "writer"),
    ("GET", "/schemas/{id}", "writer"),
    ("GET", "/audit", "reader"),
    ("GET", "/stats", "admin"),
    ("GET", "/system/health", "system"),
    ("GET", "/records", "reader"),
    ("POST", "/records", "agent"),
    ("GET", "/records/public-key", "reader"),
    ("GET", "/records/export", "reader"),
    ("GET", "/records/{id}", "reader"),
    ("GET", "/ca.pem", "reader"),
    ("GET", "/evaluations", "reader"),
    ("POST", "/evaluations", "agent"),
    ("GET", "/evaluations/{id}", "reader"),
    ("GET", "/trusted-endpoints", "writer"),
    ("POST", "/trusted-endpoints", "writer"),
    ("DELETE", "/trusted-endpoints/{id}", "writer"),
    ("GET", "/hooks", "writer"),
    ("POST", "/hooks", "writer"),
    ("DELETE", "/hooks/{id}", "writer"),
    ("GET", "/hooks/{id}/deliveries", "writer"),
    ("GET", "/hooks/dlq", "writer"),
    ("POST", "/hooks/dlq/{id}/replay", "writer"),
    ("POST", "/hooks/dlq/retry-all", "system"),
];

fn level(role: &str) -> usize {
    ROLES
        .iter()
        .position(|known| *known == role)
        .expect("known role")
}

async fn keys_by_role(app: &TestApp) -> Vec<(&'static str, String)> {
    let mut keys = Vec::new();
    for role in ROLES {
        let key = match role {
            "system" => app.admin_key.clone(),
            role => app.key(role, None).await,
        };
        keys.push((role, key));
    }
    keys
}

async fn every_route_needs_its_role(backend: Backend) {
    let app = spawn_app(backend).await;
    let keys = keys_by_role(&app).await;
    let id = uuid::Uuid::new_v4().to_string();
    for (method, template, required) in ROUTES {
        let path = template.replace("{id}", &id);
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let body = matches!(method, Method::POST | Method::PATCH).then(|| json!({}));
        for (role, key) in &keys {
            let reply = app
                .send(method.clone(), &path, Some(key), body.clone())
                .await;
            if level(role) < level(required) {
                assert_eq!(
                    reply.status,
                    StatusCode::FORBIDDEN,
                    "{method} {path} as {role}"
                );
                let detail = match (*role, *required) {
                    ("admin", "system") => SYSTEM_DENIAL.to_string(),
                    (role, required) => format!(
                        "Insufficient permissions. Required role: {}, current role: {role}",
                        required.replace("system", "admin")
                    ),
                };
                assert_eq!(
                    reply.body,
                    json!({ "detail": detail }),
                    "{method} {path} as {role}"
                );
            } else {
                assert!(
                    ![StatusCode::FORBIDDEN, StatusCode::UNAUTHORIZED].contains(&reply.status),
                    "{method} {path} as {role} reached its handler: {} {}",
                    reply.status,
                    reply.text
                );
            }
        }
    }
}

async fn paths_outside_the_table(backend: Backend) {
    let app = spawn_app(backend).await;
    let keys = keys_by_role(&app).await;
    for (role, key) in &keys {
        let unknown = app
            .send(Method::GET, "/no-such-route", Some(key), None)
            .await;
        if level(role) >= level("admin") {
            assert_eq!(unknown.status, StatusCode::NOT_FOUND);
        } else {
            assert_eq!(
                unknown.status,
                StatusCode::FORBIDDEN,
                "unmatched paths need admin"
            );
            assert_eq!(
                unknown.body["detail"],
                format!("Insufficient permissions. Required role: admin, current role: {role}")
            );
        }
        for open in ["/health", "/ready", "/metrics"] {
            let reply = app
                .http
                .get(app.url(open))
                .header("X-API-Key", key)
                .send()
                .await
                .expect("sent");
            assert_eq!(reply.status(), StatusCode::OK, "{open} as {role}");
        }
    }
}

async fn authentication_answers_for_keys_rbac_cannot_judge(backend: Backend) {
    let app = spawn_app(backend).await;
    let missing = app.send(Method::GET, "/keys", None, None).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(missing.body, json!({"detail": "Missing X-API-Key header"}));
    let unknown = app
        .send(Method::GET, "/keys", Some("hr_not-a-real-key"), None)
        .await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.body, json!({"detail": "Invalid API key"}));

    let reader = app
        .post("/keys", json!({"name": "r", "role": "reader"}))
        .await;
    let (id, plaintext) = (
        reader.body["id"].as_str().expect("id").to_string(),
        reader.body["key"].as_str().expect("key").to_string(),
    );
    assert_eq!(
        app.delete(&format!("/keys/{id}")).await.status,
        StatusCode::NO_CONTENT
    );
    let revoked = app.send(Method::GET, "/keys", Some(&plaintext), None).await;
    assert_eq!(revoked.status, StatusCode::FORBIDDEN);
    assert_eq!(
        revoked.body,
        json!({"detail": "API key has been revoked"}),
        "a revoked key is judged by authentication, not by its old role"
    );
    let no_key_unknown_path = app.send(Method::GET, "/no-such-route", None, None).await;
    assert_eq!(no_key_unknown_path.status, StatusCode::NOT_FOUND);
}
