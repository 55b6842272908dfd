//! Per-tenant trusted endpoints through the API.

use crate::on_both_backends;
use crate::support::{spawn_app, Backend};
use reqwest::{Method, StatusCode};
use serde_json::json;

on_both_backends!(
    trusted_endpoints_are_added_listed_and_removed_per_tenant,
    invalid_templates_and_low_roles_are_refused
);

async fn trusted_endpoints_are_added_listed_and_removed_per_tenant(backend: Backend) {
    let app = spawn_app(backend).await;
    let added = app.post("/trusted-endpoints", json!({"url": "https://api.example.com/v1/orders/{id}", "methods": ["get", "GET", "head"]})).await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.text);
    assert_eq!(
        added.body["methods"],
        json!(["GET", "HEAD"]),
        "methods upper-cased and deduplicated"
    );
    let id = added.body["id"].as_str().unwrap_or_default().to_string();
    let second = app
        .post(
            "/trusted-endpoints",
            json!({"url": "https://*.payments.example/{rest:path}"}),
        )
        .await;
    assert_eq!(second.body["methods"], json!([]));

    let listed = app.get("/trusted-endpoints").await;
    let urls: Vec<&str> = listed
        .body
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["url"].as_str())
        .collect();
    assert_eq!(
        urls,
        [
            "https://api.example.com/v1/orders/{id}",
            "https://*.payments.example/{rest:path}"
        ]
    );

    let other = app.key("admin", Some("acme")).await;
    let theirs = app
        .send(Method::GET, "/trusted-endpoints", Some(&other), None)
        .await;
    assert_eq!(theirs.body, json!([]), "another tenant sees none of them");
    let cross = app
        .send(
            Method::DELETE,
            &format!("/trusted-endpoints/{id}"),
            Some(&other),
            None,
        )
        .await;
    assert_eq!(
        cross.status,
        StatusCode::NOT_FOUND,
        "nor can it delete them"
    );

    assert_eq!(
        app.delete(&format!("/trusted-endpoints/{id}")).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.delete(&format!("/trusted-endpoints/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/trusted-endpoints")
            .await
            .body
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

async fn invalid_templates_and_low_roles_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    for url in [
        "ftp://x/y",
        "https://api.example.com@evil.net/x",
        "https://api.*.com/x",
        "https://a.example/x?y=1",
    ] {
        let reply = app.post("/trusted-endpoints", json!({"url": url})).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{url}");
        assert_eq!(reply.body["detail"][0]["loc"], json!(["body", "url"]));
    }
    let reader = app.key("reader", None).await;
    let agent = app.key("agent", None).await;
    assert_eq!(
        app.send(Method::GET, "/trusted-endpoints", Some(&reader), None)
            .await
            .status,
        StatusCode::OK
    );
    for key in [&reader, &agent] {
        let reply = app
            .send(
                Method::POST,
                "/trusted-endpoints",
                Some(key),
                Some(json!({"url": "https://a.example/x"})),
            )
            .await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
    }
    assert_eq!(
        app.get("/trusted-endpoints").await.body,
        json!([]),
        "nothing was stored"
    );
}
