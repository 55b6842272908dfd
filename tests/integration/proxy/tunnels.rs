//! HTTPS through CONNECT: intercepted and recorded with the proxy's CA, or tunnelled blindly with `--no-mitm`.

use super::*;
use crate::on_both_backends;
use crate::support::{spawn_app_with, AppOptions, Backend};
use crate::upstream::spawn_tls_upstream;
use reqwest::StatusCode;
use serde_json::Value;

on_both_backends!(
    https_through_connect_is_intercepted_and_recorded,
    shutdown_drains_a_request_in_flight_inside_a_tunnel,
);

async fn https_through_connect_is_intercepted_and_recorded(backend: Backend) {
    let tls = spawn_tls_upstream().await;
    let upstream_ca = tls.ca_pem.clone();
    let app = spawn_app_with(
        backend,
        AppOptions {
            configure: Box::new(move |config| config.proxy.upstream_ca = Some(upstream_ca)),
            ..Default::default()
        },
    )
    .await;
    let client = through_proxy_trusting_ca(&app, &app.admin_key).await;
    let url = format!(
        "https://localhost:{}/echo/secure?x=1&x=2",
        tls.upstream.addr.port()
    );
    for _ in 0..2 {
        // Twice: the second tunnel to the host reuses its cached leaf certificate.
        let response = client
            .post(&url)
            .header("Authorization", "Bearer tls-secret")
            .header("X-HandoffRail-Run", "run-tls")
            .body("over tls")
            .send()
            .await
            .expect("proxied over TLS");
        assert_eq!(response.status(), StatusCode::OK);
        let id = record_id(&response);
        let seen: Value = response.json().await.expect("echo");
        assert_eq!(seen["target"], "/echo/secure?x=1&x=2");
        assert_eq!(
            header(&seen["headers"], "authorization"),
            ["Bearer tls-secret"]
        );
        assert_eq!(unb64(&seen["body"]), b"over tls");
        let stored = record(&app, &id).await;
        assert_eq!(stored["url"], url);
        assert_eq!(stored["run_id"], "run-tls");
        assert_eq!(stored["agent_id"], "tls-agent");
        assert_eq!(stored["signature_valid"], true);
        assert_eq!(unb64(&stored["request_body"]), b"over tls");
        assert_eq!(
            header(&stored["request_headers"], "authorization"),
            ["[REDACTED]"]
        );
    }
    assert_eq!(tls.upstream.hits(), 2);

    // Without --upstream-ca the upstream's certificate is not trusted: 502, recorded.
    let strict = spawn_app_with(backend, AppOptions::default()).await;
    let client = through_proxy_trusting_ca(&strict, &strict.admin_key).await;
    let refused = client.get(&url).send().await.expect("answered");
    assert_eq!(refused.status(), StatusCode::BAD_GATEWAY);
    let stored = record(&strict, &record_id(&refused)).await;
    assert!(
        stored["upstream_error"]
            .as_str()
            .is_some_and(|e| e.contains("certificate")),
        "{stored}"
    );
    assert_eq!(
        tls.upstream.hits(),
        2,
        "the untrusted upstream got no request"
    );

    // Without credentials, no tunnel.
    let anonymous = reqwest::Client::builder()
        .proxy(
            reqwest::Proxy::all(format!("http://{}", app.proxy_addr.expect("proxy")))
                .expect("proxy"),
        )
        .danger_accept_invalid_certs(true)
        .build()
        .expect("client");
    assert!(
        anonymous.get(&url).send().await.is_err(),
        "CONNECT refused with 407"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_mitm_tunnels_blindly_and_records_nothing() {
    let tls = spawn_tls_upstream().await;
    let app = spawn_app_with(
        Backend::Sqlite,
        AppOptions {
            configure: Box::new(|config| config.proxy.no_mitm = true),
            ..Default::default()
        },
    )
    .await;
    let upstream_ca = std::fs::read(&tls.ca_pem).expect("upstream ca");
    let client = proxied_client(&proxy_addr(&app), "a", &app.admin_key, Some(&upstream_ca));
    let url = format!("https://localhost:{}/echo/blind", tls.upstream.addr.port());
    let response = client.get(&url).send().await.expect("tunnelled");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers().get("x-handoffrail-record").is_none(),
        "the proxy never saw inside the tunnel"
    );
    // A recorded exchange is handed to the recorder before its response is forwarded, so the recorder's count is
    // final once the response is in: nothing to wait for.
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("handoffrail_proxy_records_total{state=\"queued\"} 0"),
        "{metrics}"
    );
    assert_eq!(
        app.get("/records").await.body["records"]
            .as_array()
            .map(Vec::len),
        Some(0)
    );
}

/// A request inside an intercepted tunnel is in flight when shutdown begins: the server does not stop before
/// it is answered and recorded (the tunnel outlives the CONNECT's connection, so the listener alone would not
/// wait for it).
async fn shutdown_drains_a_request_in_flight_inside_a_tunnel(backend: Backend) {
    let tls = spawn_tls_upstream().await;
    let upstream_ca = tls.ca_pem.clone();
    // The database outlives the server, to be read after it stopped.
    let dir = std::sync::Arc::new(tempfile::TempDir::new().expect("dir"));
    let database = crate::support::fresh_database(backend, &dir).await;
    let app = spawn_app_with(
        backend,
        AppOptions {
            database_url: Some(database.url.clone()),
            dir: Some(dir.clone()),
            configure: Box::new(move |config| config.proxy.upstream_ca = Some(upstream_ca)),
            ..Default::default()
        },
    )
    .await;
    let client = through_proxy_trusting_ca(&app, &app.admin_key).await;
    let url = format!("https://localhost:{}/pause/1500", tls.upstream.addr.port());
    let in_flight = tokio::spawn(async move { client.get(&url).send().await });
    for _ in 0..1000 {
        if tls.upstream.hits() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(tls.upstream.hits(), 1, "the request reached the upstream");
    app.stop().await;
    assert_eq!(
        tls.upstream.paused_answers(),
        1,
        "shutdown returned only after the tunnel's exchange was answered"
    );
    let response = in_flight
        .await
        .expect("client task")
        .expect("answered before the tunnel closed");
    assert_eq!(response.status(), StatusCode::OK);
    let id: uuid::Uuid = record_id(&response).parse().expect("record id");
    assert_eq!(response.text().await.expect("body"), "paused");
    let store = handoffrail::store::open(&database.url, &Default::default())
        .await
        .expect("store");
    let stored = store
        .get_record("default", id)
        .await
        .expect("read")
        .expect("the tunnel's record is stored");
    assert_eq!(stored.record.response_body, b"paused");
}
