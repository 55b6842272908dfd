//! Who may pass: no credentials, no forwarding; reverse routes take the API key; untrusted destinations are
//! blocked when asked.

use super::*;
use crate::on_both_backends;
use crate::support::{spawn_app_with, AppOptions, Backend};
use crate::upstream::spawn_upstream;
use reqwest::StatusCode;
use serde_json::{json, Value};

on_both_backends!(
    no_credentials_no_forwarding,
    reverse_routes_forward_and_authenticate_with_the_api_key,
    untrusted_destinations_are_blocked_when_asked,
);

async fn no_credentials_no_forwarding(backend: Backend) {
    let app = spawn_app_with(backend, AppOptions::default()).await;
    let upstream = spawn_upstream().await;
    let proxy = format!("http://{}", app.proxy_addr.expect("proxy"));
    let anonymous = reqwest::Client::builder()
        .proxy(reqwest::Proxy::all(&proxy).expect("proxy"))
        .build()
        .expect("client");
    let refused = anonymous
        .get(upstream.url("/echo"))
        .send()
        .await
        .expect("answered");
    assert_eq!(refused.status(), StatusCode::PROXY_AUTHENTICATION_REQUIRED);
    assert_eq!(
        refused
            .headers()
            .get("proxy-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some("Basic realm=\"handoffrail\"")
    );
    let wrong = through_proxy(&app, "a", &handoffrail::auth::generate_key());
    let refused = wrong
        .get(upstream.url("/echo"))
        .send()
        .await
        .expect("answered");
    assert_eq!(refused.status(), StatusCode::PROXY_AUTHENTICATION_REQUIRED);
    let reader = app.key("reader", None).await;
    let low = through_proxy(&app, "a", &reader);
    assert_eq!(
        low.get(upstream.url("/echo"))
            .send()
            .await
            .expect("answered")
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(upstream.hits(), 0, "nothing was forwarded");
    let unrouted = reqwest::get(format!("{proxy}/not/a/route"))
        .await
        .expect("answered");
    assert_eq!(unrouted.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        app.get("/records").await.body["records"]
            .as_array()
            .map(Vec::len),
        Some(0),
        "and nothing was recorded"
    );
}

async fn reverse_routes_forward_and_authenticate_with_the_api_key(backend: Backend) {
    let upstream = spawn_upstream().await;
    let rules = rules_with_route(&upstream);
    let app = spawn_app_with(
        backend,
        AppOptions {
            rules: Some(rules.path().to_path_buf()),
            ..Default::default()
        },
    )
    .await;
    let proxy = format!("http://{}", app.proxy_addr.expect("proxy"));
    let http = reqwest::Client::new();
    let refused = http
        .get(format!("{proxy}/up/echo/x"))
        .send()
        .await
        .expect("answered");
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(upstream.hits(), 0);

    let response = http
        .put(format!("{proxy}/up/echo/x?a=1&a=2"))
        .header("X-API-Key", &app.admin_key)
        .header("X-HandoffRail-Run", "run-r")
        .body("payload")
        .send()
        .await
        .expect("routed");
    assert_eq!(response.status(), StatusCode::OK);
    let id = record_id(&response);
    let seen: Value = response.json().await.expect("echo");
    assert_eq!(
        (seen["method"].clone(), seen["target"].clone()),
        (json!("PUT"), json!("/echo/x?a=1&a=2"))
    );
    assert_eq!(
        header(&seen["headers"], "host"),
        [upstream.addr.to_string()]
    );
    assert!(
        header(&seen["headers"], "x-api-key").is_empty(),
        "our key is not handed to the upstream"
    );
    assert_eq!(unb64(&seen["body"]), b"payload");
    let stored = record(&app, &id).await;
    assert_eq!(stored["url"], upstream.url("/echo/x?a=1&a=2"));
    assert_eq!(stored["run_id"], "run-r");
    assert_eq!(stored["signature_valid"], true);
}

async fn untrusted_destinations_are_blocked_when_asked(backend: Backend) {
    let upstream = spawn_upstream().await;
    let rules = tempfile::TempDir::new().expect("rules dir");
    std::fs::write(
        rules.path().join("trust.toml"),
        format!(
            "[[trusted]]\nurl = \"{}\"\n",
            upstream.url("/echo/trusted/{rest:path}")
        ),
    )
    .expect("write rules");
    let app = spawn_app_with(
        backend,
        AppOptions {
            rules: Some(rules.path().to_path_buf()),
            configure: Box::new(|config| config.proxy.block_untrusted = true),
            ..Default::default()
        },
    )
    .await;
    let client = through_proxy(&app, "a", &app.admin_key);
    let allowed = client
        .get(upstream.url("/echo/trusted/orders/7"))
        .send()
        .await
        .expect("answered");
    assert_eq!(allowed.status(), StatusCode::OK);
    let allowed = record(&app, &record_id(&allowed)).await;
    assert_eq!(allowed["trusted"], true);
    let blocked = client
        .get(upstream.url("/echo/secret"))
        .send()
        .await
        .expect("answered");
    assert_eq!(blocked.status(), StatusCode::FORBIDDEN);
    let blocked = record(&app, &record_id(&blocked)).await;
    assert_eq!(
        upstream.hits(),
        1,
        "no upstream request for the untrusted destination"
    );
    assert_eq!(blocked["trusted"], false);
    assert_eq!(blocked["status"], Value::Null);
    assert!(
        blocked["upstream_error"]
            .as_str()
            .is_some_and(|e| e.contains("--block-untrusted")),
        "{blocked}"
    );
}
