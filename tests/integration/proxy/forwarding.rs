//! Forwarding: byte-exact in both directions, streamed (chunked, SSE, a 200 MiB body in bounded memory), content-encoded
//! responses passed unchanged and stored decoded, and concurrent exchanges each recorded exactly once.

use super::*;
use crate::on_both_backends;
use crate::support::{spawn_app_with, AppOptions, Backend};
use crate::upstream::{gzipped_order, spawn_upstream, CHUNKS, EVENTS, ORDER};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

on_both_backends!(
    forwarded_requests_are_byte_exact_and_recorded,
    chunked_and_sse_responses_stream_and_are_recorded_as_received,
    encoded_responses_pass_unchanged_and_are_stored_decoded,
    concurrent_exchanges_are_each_recorded_exactly_once,
);

async fn forwarded_requests_are_byte_exact_and_recorded(backend: Backend) {
    let app = spawn_app_with(backend, AppOptions::default()).await;
    let upstream = spawn_upstream().await;
    let client = through_proxy(&app, "sales-01", &app.admin_key);
    let body = b"\x00binary \xffbody\n{\"a\": 1}".to_vec();
    let target = "/echo/v1/orders/7?expand=a&expand=b&q=%20x&api_key=query-secret";
    let response = client
        .post(upstream.url(target))
        .header("Authorization", "Bearer upstream-secret")
        .header("Cookie", "session=cookie-secret")
        .header("X-API-Key", "upstream-key-secret")
        .header("X-Trace", "1")
        .header("X-HandoffRail-Run", "run-p")
        .header("X-HandoffRail-Action", "get_order")
        .body(body.clone())
        .send()
        .await
        .expect("proxied");
    assert_eq!(response.status(), StatusCode::OK);
    let id = record_id(&response);
    let repeated: Vec<String> = response
        .headers()
        .get_all("x-repeated")
        .iter()
        .map(|value| value.to_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(repeated, ["1", "2"], "response headers come back as sent");
    let received = response.bytes().await.expect("body");
    let seen: Value = serde_json::from_slice(&received).expect("echo");
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["target"], target, "path and query byte for byte");
    assert_eq!(unb64(&seen["body"]), body);
    assert_eq!(
        header(&seen["headers"], "authorization"),
        ["Bearer upstream-secret"]
    );
    assert_eq!(
        header(&seen["headers"], "cookie"),
        ["session=cookie-secret"]
    );
    assert_eq!(
        header(&seen["headers"], "x-api-key"),
        ["upstream-key-secret"]
    );
    assert_eq!(header(&seen["headers"], "x-trace"), ["1"]);
    for ours in [
        "proxy-authorization",
        "x-handoffrail-run",
        "x-handoffrail-action",
    ] {
        assert!(
            header(&seen["headers"], ours).is_empty(),
            "{ours} is not forwarded"
        );
    }

    let stored = record(&app, &id).await;
    assert_eq!(stored["signature_valid"], true, "{stored}");
    assert_eq!(
        (
            stored["provenance"].clone(),
            stored["method"].clone(),
            stored["status"].clone()
        ),
        (json!("proxy"), json!("POST"), json!(200))
    );
    assert_eq!(
        (
            stored["run_id"].clone(),
            stored["action"].clone(),
            stored["agent_id"].clone()
        ),
        (json!("run-p"), json!("get_order"), json!("sales-01"))
    );
    assert_eq!(
        stored["url"],
        upstream.url("/echo/v1/orders/7?expand=a&expand=b&q=%20x&api_key=[REDACTED]")
    );
    assert_eq!(unb64(&stored["request_body"]), body);
    assert_eq!(
        unb64(&stored["response_body"]),
        received,
        "recorded as the client got it"
    );
    assert_eq!(stored["response_body_size"], received.len());
    for secret in ["authorization", "cookie", "x-api-key"] {
        assert_eq!(
            header(&stored["request_headers"], secret),
            ["[REDACTED]"],
            "{secret}"
        );
    }
    assert_eq!(
        header(&stored["response_headers"], "set-cookie"),
        ["[REDACTED]"]
    );
    let text = stored.to_string();
    for secret in [
        "upstream-secret",
        "cookie-secret",
        "upstream-key-secret",
        "query-secret",
    ] {
        assert!(!text.contains(secret), "{secret} stored: {text}");
    }
    assert!(stored["timings"]["first_byte_at"].is_string());
    assert!(stored["timings"]["ended_at"].is_string());
    assert_eq!(stored["aborted"], false);
}

async fn chunked_and_sse_responses_stream_and_are_recorded_as_received(backend: Backend) {
    let app = spawn_app_with(backend, AppOptions::default()).await;
    let upstream = spawn_upstream().await;
    let client = through_proxy(&app, "a", &app.admin_key);
    for (path, expected) in [("/chunked", CHUNKS.concat()), ("/sse", EVENTS.concat())] {
        let mut response = client
            .get(upstream.url(path))
            .send()
            .await
            .expect("proxied");
        let id = record_id(&response);
        let mut chunks = 0;
        let mut received = Vec::new();
        while let Some(chunk) = response.chunk().await.expect("chunk") {
            chunks += 1;
            received.extend_from_slice(&chunk);
        }
        assert_eq!(String::from_utf8_lossy(&received), expected, "{path}");
        assert!(chunks > 1, "{path} arrived in pieces, not buffered whole");
        let stored = record(&app, &id).await;
        assert_eq!(
            unb64(&stored["response_body"]),
            expected.as_bytes(),
            "{path}"
        );
        assert_eq!(stored["response_truncated"], false);
    }
}

async fn encoded_responses_pass_unchanged_and_are_stored_decoded(backend: Backend) {
    let app = spawn_app_with(backend, AppOptions::default()).await;
    let upstream = spawn_upstream().await;
    let client = through_proxy(&app, "a", &app.admin_key);
    let response = client
        .get(upstream.url("/gzip"))
        .header("X-HandoffRail-Run", "run-gz")
        .header("X-HandoffRail-Action", "get_order")
        .send()
        .await
        .expect("proxied");
    assert_eq!(
        response
            .headers()
            .get("content-encoding")
            .and_then(|v| v.to_str().ok()),
        Some("gzip")
    );
    let id = record_id(&response);
    let received = response.bytes().await.expect("body");
    assert_eq!(
        received.as_ref(),
        gzipped_order().as_slice(),
        "the client gets the encoded bytes"
    );
    let stored = record(&app, &id).await;
    assert_eq!(
        unb64(&stored["response_body"]),
        ORDER.as_bytes(),
        "the record keeps them decoded"
    );
    assert_eq!(
        header(&stored["response_headers"], "content-encoding"),
        ["gzip"]
    );
    let verdict = app
        .post(
            "/evaluations",
            json!({"run_id": "run-gz", "claims": [{"action_name": "get_order", "verification_mode": "field_extraction",
                   "json_path": "$.order.total", "claimed_value": "89.50"}]}),
        )
        .await;
    assert_eq!(verdict.body["outcome"], "PASS", "{}", verdict.text);
}

async fn concurrent_exchanges_are_each_recorded_exactly_once(backend: Backend) {
    const EXCHANGES: usize = 500;
    let app = spawn_app_with(backend, AppOptions::default()).await;
    let upstream = spawn_upstream().await;
    let client = through_proxy(&app, "load", &app.admin_key);
    let sends = (0..EXCHANGES).map(|n| {
        let client = client.clone();
        let url = upstream.url(&format!("/echo/{n}"));
        async move {
            let response = client
                .post(url)
                .header("X-HandoffRail-Run", "run-load")
                .body(format!("request {n}"))
                .send()
                .await
                .expect("proxied");
            assert_eq!(response.status(), StatusCode::OK);
            let id = record_id(&response);
            let seen: Value = response.json().await.expect("echo");
            assert_eq!(seen["target"], format!("/echo/{n}"));
            (n, id)
        }
    });
    let sent = futures::future::join_all(sends).await;
    let ids: std::collections::HashSet<&str> = sent.iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!(ids.len(), EXCHANGES, "one record id per exchange");
    assert_eq!(upstream.hits(), EXCHANGES);

    let key = handoffrail::records::RecordKey::load_or_create(app.data_dir()).expect("record key");
    let mut stored = Vec::new();
    for _ in 0..100 {
        let export = app
            .http
            .get(app.api("/records/export?format=jsonl&run_id=run-load"))
            .header("X-API-Key", &app.admin_key)
            .send()
            .await
            .expect("export")
            .text()
            .await
            .expect("text");
        stored = export
            .lines()
            .map(|line| {
                serde_json::from_str::<handoffrail::records::SealedRecord>(line).expect("record")
            })
            .collect();
        if stored.len() >= EXCHANGES {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        stored.len(),
        EXCHANGES,
        "every exchange recorded exactly once"
    );
    let stored_ids: std::collections::HashSet<String> = stored
        .iter()
        .map(|sealed| sealed.record.id.to_string())
        .collect();
    assert_eq!(stored_ids.len(), EXCHANGES);
    assert!(sent.iter().all(|(_, id)| stored_ids.contains(id)));
    for (n, id) in &sent {
        let sealed = stored
            .iter()
            .find(|sealed| sealed.record.id.to_string() == *id)
            .expect("recorded");
        assert!(key.verify(sealed).is_valid(), "record {id} verifies");
        assert_eq!(
            sealed.record.request_body,
            format!("request {n}").as_bytes()
        );
    }
}

/// The peak resident memory of a process, from /proc (Linux), in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A 200 MiB response streams through the real binary without the proxy holding it: its peak memory grows by
/// less than 64 MiB, and the record keeps the first 10 MiB, marked truncated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_mib_response_streams_through_in_bounded_memory() {
    crate::support::init();
    let dir = tempfile::TempDir::new().expect("dir");
    let database = crate::support::fresh_database(Backend::Sqlite, &dir).await;
    let url = database.url.clone();
    let key = handoffrail::auth::generate_key();
    let mut server = crate::support::start_binary(&url, dir.path(), &key);
    let upstream = spawn_upstream().await;
    let before = peak_rss_kib(server.child.id());
    assert!(before > 0, "VmHWM readable");
    let client = proxied_client(&server.proxy, "big", &key, None);
    let mut response = client
        .get(upstream.url("/big/200"))
        .send()
        .await
        .expect("proxied");
    let id = record_id(&response);
    let mut received: u64 = 0;
    while let Some(chunk) = response.chunk().await.expect("chunk") {
        received += chunk.len() as u64;
    }
    assert_eq!(received, 200 << 20);
    let growth_mib = (peak_rss_kib(server.child.id()).saturating_sub(before)) / 1024;
    assert!(growth_mib < 64, "peak memory grew by {growth_mib} MiB");

    let http = reqwest::Client::new();
    let mut stored = Value::Null;
    for _ in 0..100 {
        let reply = http
            .get(format!("{}/records/{id}", server.base))
            .header("X-API-Key", &key)
            .send()
            .await
            .expect("record");
        if reply.status() == StatusCode::OK {
            stored = reply.json().await.expect("json");
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(stored["response_truncated"], true, "{}", stored["id"]);
    assert_eq!(stored["response_body_size"], 200u64 << 20);
    assert_eq!(unb64(&stored["response_body"]).len(), 10 << 20);
    assert_eq!(stored["signature_valid"], true);
    // SAFETY: plain kill(2) on our own child's pid.
    unsafe { libc::kill(server.child.id() as i32, libc::SIGTERM) };
    let _ = server.child.wait();
}
