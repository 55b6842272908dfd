//! Failures are evidence too: upstream errors are answered and recorded, and a client that leaves mid-body
//! leaves an aborted record.

use super::*;
use crate::on_both_backends;
use crate::support::{spawn_app_with, AppOptions, Backend};
use crate::upstream::spawn_upstream;
use reqwest::StatusCode;
use serde_json::Value;

on_both_backends!(
    upstream_failures_are_answered_and_recorded,
    a_client_that_leaves_mid_body_leaves_an_aborted_record,
);

async fn upstream_failures_are_answered_and_recorded(backend: Backend) {
    let upstream = spawn_upstream().await;
    let app = spawn_app_with(
        backend,
        AppOptions {
            configure: Box::new(|config| config.proxy.upstream_timeout = 0.5),
            ..Default::default()
        },
    )
    .await;
    let client = through_proxy(&app, "a", &app.admin_key);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let refused_url = format!("http://{}/nothing", closed.local_addr().expect("addr"));
    drop(closed);
    let refused = client.get(&refused_url).send().await.expect("answered");
    assert_eq!(refused.status(), StatusCode::BAD_GATEWAY);
    let refused_id = record_id(&refused);
    let timed_out = client
        .get(upstream.url("/slow"))
        .send()
        .await
        .expect("answered");
    assert_eq!(timed_out.status(), StatusCode::GATEWAY_TIMEOUT);
    let timed_out_id = record_id(&timed_out);

    let stored = record(&app, &refused_id).await;
    assert_eq!(stored["status"], Value::Null);
    assert!(
        stored["upstream_error"]
            .as_str()
            .is_some_and(|e| e.to_lowercase().contains("connect")),
        "{stored}"
    );
    assert_eq!(stored["signature_valid"], true);
    let stored = record(&app, &timed_out_id).await;
    assert!(
        stored["upstream_error"]
            .as_str()
            .is_some_and(|e| e.contains("--upstream-timeout")),
        "{stored}"
    );
    assert_eq!(stored["response_body"], "");
}

async fn a_client_that_leaves_mid_body_leaves_an_aborted_record(backend: Backend) {
    let app = spawn_app_with(backend, AppOptions::default()).await;
    let upstream = spawn_upstream().await;
    let client = through_proxy(&app, "a", &app.admin_key);
    let mut response = client
        .get(upstream.url("/big/50"))
        .send()
        .await
        .expect("proxied");
    let id = record_id(&response);
    let first = response.chunk().await.expect("chunk").expect("some body");
    assert!(!first.is_empty());
    drop(response);
    drop(client);
    let stored = record(&app, &id).await;
    assert_eq!(stored["aborted"], true, "{}", stored["id"]);
    assert!(stored["response_body_size"]
        .as_u64()
        .is_some_and(|size| size < 50 << 20));
    assert_eq!(stored["signature_valid"], true);
}
