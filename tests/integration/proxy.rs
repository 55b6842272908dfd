//! The interceptor proxy against real upstreams on loopback: forwarding is byte-exact, every exchange is
//! recorded (redacted, sealed), failures are answered and recorded, and proxied records work as evidence.

use crate::on_both_backends;
use crate::support::{spawn_app_with, AppOptions, Backend, TestApp};
use crate::upstream::{
    gzipped_order, spawn_tls_upstream, spawn_upstream, Upstream, CHUNKS, EVENTS, ORDER,
};
use base64::Engine;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

on_both_backends!(
    forwarded_requests_are_byte_exact_and_recorded,
    no_credentials_no_forwarding,
    reverse_routes_forward_and_authenticate_with_the_api_key,
    upstream_failures_are_answered_and_recorded,
    proxied_records_are_evidence_for_claims,
    chunked_and_sse_responses_stream_and_are_recorded_as_received,
    https_through_connect_is_intercepted_and_recorded,
    encoded_responses_pass_unchanged_and_are_stored_decoded,
    concurrent_exchanges_are_each_recorded_exactly_once,
    untrusted_destinations_are_blocked_when_asked,
    a_client_that_leaves_mid_body_leaves_an_aborted_record,
    responses_complete_only_once_their_records_are_durable,
    records_the_database_cannot_take_are_spooled_then_written,
    the_recorder_shows_in_metrics,
);

fn unb64(value: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(value.as_str().unwrap_or_default())
        .expect("base64")
}

/// A client that sends everything through the proxy at `addr` as `agent` with `key`, trusting `root` (PEM)
/// besides the webpki roots.
fn proxied_client(addr: &str, agent: &str, key: &str, root: Option<&[u8]>) -> reqwest::Client {
    let proxy = reqwest::Proxy::all(format!("http://{addr}"))
        .expect("proxy url")
        .basic_auth(agent, key);
    let mut builder = reqwest::Client::builder().proxy(proxy);
    if let Some(pem) = root {
        builder = builder.add_root_certificate(reqwest::Certificate::from_pem(pem).expect("pem"));
    }
    builder.build().expect("client")
}

fn proxy_addr(app: &TestApp) -> String {
    app.proxy_addr.expect("proxy runs").to_string()
}

/// A client that sends everything through the app's proxy as `agent` with `key`.
pub fn through_proxy(app: &TestApp, agent: &str, key: &str) -> reqwest::Client {
    proxied_client(&proxy_addr(app), agent, key, None)
}

/// The record, once the recorder has written it.
pub async fn record(app: &TestApp, id: &str) -> Value {
    for _ in 0..60 {
        let reply = app.get(&format!("/records/{id}")).await;
        if reply.status == StatusCode::OK {
            return reply.body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("record {id} never appeared");
}

fn record_id(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("x-handoffrail-record")
        .and_then(|value| value.to_str().ok())
        .expect("X-HandoffRail-Record on every proxied response")
        .to_string()
}

fn header<'a>(list: &'a Value, name: &str) -> Vec<&'a str> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter(|header| {
            header["name"]
                .as_str()
                .or(header[0].as_str())
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
        .filter_map(|header| header["value"].as_str().or(header[1].as_str()))
        .collect()
}

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

fn rules_with_route(upstream: &Upstream) -> tempfile::TempDir {
    let dir = tempfile::TempDir::new().expect("rules dir");
    std::fs::write(
        dir.path().join("routes.toml"),
        format!(
            "[[routes]]\nprefix = \"/up\"\nupstream = \"{}\"\n",
            upstream.url("")
        ),
    )
    .expect("write rules");
    dir
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

async fn proxied_records_are_evidence_for_claims(backend: Backend) {
    let app = spawn_app_with(backend, AppOptions::default()).await;
    let upstream = spawn_upstream().await;
    let client = through_proxy(&app, "sales-01", &app.admin_key);
    let response = client
        .get(upstream.url("/echo/orders/7"))
        .header("X-HandoffRail-Run", "run-e")
        .header("X-HandoffRail-Action", "get_order")
        .send()
        .await
        .expect("proxied");
    let id = record_id(&response);
    // Straight away, as an agent would: a fresh id is waited for while the recorder writes it.
    let claims = |method: &str| {
        json!({"run_id": "run-e", "claims": [
            {"action_name": "get_order", "record_id": id, "verification_mode": "exact",
             "json_path": "$.method", "claimed_value": method},
            {"action_name": "get_order", "verification_mode": "exact",
             "json_path": "$.target", "claimed_value": "/echo/orders/7"}]})
    };
    let passed = app.post("/evaluations", claims("GET")).await;
    assert_eq!(passed.status, StatusCode::CREATED, "{}", passed.text);
    assert_eq!(passed.body["outcome"], "PASS", "{}", passed.text);
    let caught = app.post("/evaluations", claims("DELETE")).await;
    assert_eq!(caught.body["outcome"], "CAUGHT", "{}", caught.text);
    assert_eq!(caught.body["per_claim"][0]["reason"], "value_mismatch");
    assert_eq!(
        caught.body["per_claim"][1]["result"], "PASS",
        "found by run + action"
    );
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

/// A client of the proxy that trusts the app's MITM CA, as an agent configured per the README would.
async fn through_proxy_trusting_ca(app: &TestApp, key: &str) -> reqwest::Client {
    let ca = app.proxy_ca().await;
    proxied_client(&proxy_addr(app), "tls-agent", key, Some(ca.as_bytes()))
}

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
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
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

/// `handoffrail proxy` serves the proxy alone on the API server's database and data directory; `handoffrail
/// ca export` prints the CA the API serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standalone_proxy_records_into_the_shared_database() {
    use std::io::{BufRead, BufReader};
    let app = spawn_app_with(
        Backend::Sqlite,
        AppOptions {
            configure: Box::new(|config| config.proxy.disabled = true),
            ..Default::default()
        },
    )
    .await;
    assert!(app.proxy_addr.is_none(), "--no-proxy");
    let upstream = spawn_upstream().await;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_handoffrail"))
        .args([
            "proxy",
            "--proxy-port",
            "0",
            "--log-format",
            "json",
            "--database-url",
        ])
        .arg(&app.database_url)
        .arg("--data-dir")
        .arg(app.data_dir())
        .env("HANDOFFRAIL_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("proxy starts");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let addr = loop {
        let line = lines.next().expect("proxy logs its address").expect("line");
        let Ok(event) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if event["message"] == "handoffrail proxy listening" {
            break event["addr"].as_str().unwrap_or_default().to_string();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    let client = proxied_client(&addr, "standalone", &app.admin_key, None);
    let response = client
        .get(upstream.url("/echo/alone"))
        .send()
        .await
        .expect("proxied");
    assert_eq!(response.status(), StatusCode::OK);
    let stored = record(&app, &record_id(&response)).await;
    assert_eq!(stored["agent_id"], "standalone");
    assert_eq!(
        stored["signature_valid"], true,
        "sealed with the shared record key"
    );

    let exported = std::process::Command::new(env!("CARGO_BIN_EXE_handoffrail"))
        .args(["ca", "export", "--data-dir"])
        .arg(app.data_dir())
        .output()
        .expect("ca export");
    let served = app.proxy_ca().await;
    assert_eq!(String::from_utf8_lossy(&exported.stdout), served);
    // SAFETY: plain kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().expect("exit");
    assert!(status.success(), "the proxy stops cleanly on SIGTERM");
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

/// Whether record `id` is committed, read straight from the database (not through the API, which waits for
/// fresh ids).
async fn committed(database_url: &str, backend: Backend, id: &str) -> bool {
    use sqlx::Connection;
    let count: i64 = match backend {
        Backend::Sqlite => {
            let mut connection = sqlx::SqliteConnection::connect(database_url)
                .await
                .expect("sqlite");
            sqlx::query_scalar("SELECT count(*) FROM records WHERE id = ?")
                .bind(id)
                .fetch_one(&mut connection)
                .await
                .expect("count")
        }
        Backend::Postgres => {
            let mut connection = sqlx::PgConnection::connect(database_url)
                .await
                .expect("postgres");
            let id = uuid::Uuid::parse_str(id).expect("record id");
            sqlx::query_scalar("SELECT count(*) FROM records WHERE id = $1")
                .bind(id)
                .fetch_one(&mut connection)
                .await
                .expect("count")
        }
    };
    count == 1
}

/// The value of one metric line (`name{labels} value`), 0 when absent.
fn metric_value(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Waits (up to 10 s) until `/metrics` satisfies `ready`, and fails the test otherwise.
async fn wait_for_metric(app: &TestApp, ready: impl Fn(&str) -> bool) {
    let mut metrics = String::new();
    for _ in 0..200 {
        metrics = app
            .http
            .get(app.url("/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        if ready(&metrics) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the metrics never got there:\n{metrics}");
}

/// Holds the records table so that the recorder's inserts wait: an exclusive transaction on SQLite, an
/// EXCLUSIVE table lock on PostgreSQL (reads go on).
enum TableLock {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl TableLock {
    async fn take(app: &TestApp, backend: Backend) -> TableLock {
        use sqlx::Connection;
        match backend {
            Backend::Sqlite => {
                let mut connection = sqlx::SqliteConnection::connect(&app.database_url)
                    .await
                    .expect("sqlite");
                sqlx::raw_sql("BEGIN EXCLUSIVE")
                    .execute(&mut connection)
                    .await
                    .expect("lock");
                TableLock::Sqlite(connection)
            }
            Backend::Postgres => {
                let mut connection = sqlx::PgConnection::connect(&app.database_url)
                    .await
                    .expect("postgres");
                sqlx::raw_sql("BEGIN; LOCK TABLE records IN EXCLUSIVE MODE")
                    .execute(&mut connection)
                    .await
                    .expect("lock");
                TableLock::Postgres(connection)
            }
        }
    }

    async fn release(self) {
        match self {
            TableLock::Sqlite(mut connection) => sqlx::raw_sql("ROLLBACK")
                .execute(&mut connection)
                .await
                .map(drop),
            TableLock::Postgres(mut connection) => sqlx::raw_sql("ROLLBACK")
                .execute(&mut connection)
                .await
                .map(drop),
        }
        .expect("unlock");
    }
}

async fn responses_complete_only_once_their_records_are_durable(backend: Backend) {
    let app = spawn_app_with(
        backend,
        AppOptions {
            configure: Box::new(|config| config.proxy.record_queue = 1),
            ..Default::default()
        },
    )
    .await;
    let upstream = spawn_upstream().await;
    let client = through_proxy(&app, "a", &app.admin_key);
    let lock = TableLock::take(&app, backend).await;

    // Nothing can be written: every response is held back before its end, though each reached the
    // upstream and has its headers (and its record id). Each exchange checks, the moment its response ends,
    // that its record is already committed (reads go on under the lock), so an end released early fails here.
    let completed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut exchanges = Vec::new();
    for n in 0..6 {
        let (client, url, completed, database) = (
            client.clone(),
            upstream.url(&format!("/echo/held/{n}")),
            completed.clone(),
            app.database_url.clone(),
        );
        exchanges.push(tokio::spawn(async move {
            let response = client.get(url).send().await.expect("proxied");
            let id = record_id(&response);
            let body = response.bytes().await.expect("body");
            completed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            assert!(
                committed(&database, backend, &id).await,
                "the response of {id} ended before its record was committed"
            );
            (id, body)
        }));
    }
    for _ in 0..100 {
        if upstream.hits() == 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(upstream.hits(), 6, "every request reached the upstream");
    // The recorder holds a batch it cannot write.
    wait_for_metric(&app, |metrics| {
        metric_value(metrics, "handoffrail_proxy_records_total{state=\"queued\"}") >= 1.0
    })
    .await;
    let done = completed.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        done, 0,
        "{done} responses completed while none of their records could be written"
    );

    lock.release().await;
    let mut ids = Vec::new();
    for exchange in exchanges {
        let (id, body) = tokio::time::timeout(Duration::from_secs(30), exchange)
            .await
            .expect("held responses complete once records are written")
            .expect("exchange task");
        assert!(!body.is_empty());
        ids.push(id);
    }
    for id in ids {
        let stored = record(&app, &id).await;
        assert_eq!(stored["signature_valid"], true);
        assert_eq!(stored["aborted"], false);
    }
}

async fn records_the_database_cannot_take_are_spooled_then_written(backend: Backend) {
    let app = spawn_app_with(backend, AppOptions::default()).await;
    let upstream = spawn_upstream().await;
    let client = through_proxy(&app, "a", &app.admin_key);
    let lock = TableLock::take(&app, backend).await;
    // The database holds every write past the recorder's deadline: the records go to the spool on disk and
    // the responses complete, acknowledged, while the table is still locked.
    let mut ids = Vec::new();
    for n in 0..3 {
        let response = client
            .get(upstream.url(&format!("/echo/spooled/{n}")))
            .send()
            .await
            .expect("proxied");
        ids.push(record_id(&response));
        response.bytes().await.expect("acknowledged from the spool");
    }
    let spool = app.data_dir().join("spool");
    let spooled = std::fs::read_dir(&spool).expect("spool directory").count();
    assert!(spooled >= 1, "the batches wait in {}", spool.display());
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("handoffrail_proxy_records_total{state=\"spooled\"} 3"),
        "{metrics}"
    );
    lock.release().await;
    // The replayer writes them once the database answers, and empties the spool.
    for id in &ids {
        let stored = record(&app, id).await;
        assert_eq!(stored["signature_valid"], true);
    }
    for _ in 0..100 {
        if std::fs::read_dir(&spool).map_or(0, |entries| entries.count()) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        std::fs::read_dir(&spool).map_or(0, |entries| entries.count()),
        0
    );
}

async fn the_recorder_shows_in_metrics(backend: Backend) {
    let app = spawn_app_with(backend, AppOptions::default()).await;
    let upstream = spawn_upstream().await;
    let client = through_proxy(&app, "a", &app.admin_key);
    let mut ids = Vec::new();
    for n in 0..3 {
        let response = client
            .get(upstream.url(&format!("/echo/{n}")))
            .send()
            .await
            .expect("proxied");
        ids.push(record_id(&response));
        response.bytes().await.expect("body");
    }
    for id in &ids {
        record(&app, id).await;
    }
    // The counter moves just after the commit that made the records visible.
    let expected = [
        "handoffrail_proxy_records_total{state=\"queued\"} 3",
        "handoffrail_proxy_records_total{state=\"written\"} 3",
        "handoffrail_proxy_records_total{state=\"lost\"} 0",
        "handoffrail_proxy_record_queue_depth 0",
    ];
    wait_for_metric(&app, |metrics| {
        expected
            .iter()
            .all(|line| metrics.lines().any(|l| l == *line))
    })
    .await;
}
