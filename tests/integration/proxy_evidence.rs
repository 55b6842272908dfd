//! Evidence is what the upstream served: the `Host` an upstream sees is the host the record names (forged
//! `Host` headers are replaced on absolute-form requests and refused with 421 inside tunnels), credentials in
//! a URL are never recorded, and a key revoked while its tunnel is open stops being served at once.

use crate::on_both_backends;
use crate::proxy::record;
use crate::support::{spawn_app_with, AppOptions, Backend, TestApp};
use crate::upstream::{spawn_tls_upstream, spawn_upstream};
use base64::Engine;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use reqwest::StatusCode;
use rustls::pki_types::pem::PemObject;
use serde_json::Value;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

on_both_backends!(
    an_absolute_form_request_goes_to_the_host_it_names,
    url_credentials_are_never_recorded,
    a_tunnel_request_for_another_host_is_misdirected,
    a_revoked_key_ends_its_open_tunnel,
);

fn proxy_authorization(agent: &str, key: &str) -> String {
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!("{agent}:{key}"));
    format!("Basic {credentials}")
}

/// Sends `head` (a whole request head) to the proxy on a fresh connection; the raw response.
async fn raw_exchange(app: &TestApp, head: &str) -> String {
    let mut stream = TcpStream::connect(app.proxy_addr.expect("proxy runs"))
        .await
        .expect("connect");
    stream.write_all(head.as_bytes()).await.expect("request");
    let mut response = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut response),
    )
    .await;
    String::from_utf8_lossy(&response).to_string()
}

fn header_value<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    response.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

fn host_seen(echo: &Value) -> Vec<String> {
    echo["headers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|pair| pair[0] == "host")
        .map(|pair| pair[1].as_str().unwrap_or_default().to_string())
        .collect()
}

async fn an_absolute_form_request_goes_to_the_host_it_names(backend: Backend) {
    let upstream = spawn_upstream().await;
    let app = spawn_app_with(backend, AppOptions::default()).await;
    let target = format!("127.0.0.1:{}", upstream.addr.port());
    // The reproducer: a forged Host made the record say 127.0.0.1 while a name-based upstream answered
    // for another virtual host.
    let response = raw_exchange(
        &app,
        &format!(
            "GET http://{target}/echo/trusted HTTP/1.1\r\nHost: attacker-vhost.example\r\nProxy-Authorization: {}\r\nConnection: close\r\n\r\n",
            proxy_authorization("agent-1", &app.admin_key)
        ),
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    let echo: Value = serde_json::from_str(body).expect("echo JSON");
    assert_eq!(
        host_seen(&echo),
        std::slice::from_ref(&target),
        "the upstream saw the target's authority"
    );
    let id = header_value(&response, "x-handoffrail-record").expect("record id");
    let stored = record(&app, id).await;
    assert_eq!(stored["url"], format!("http://{target}/echo/trusted"));
    let recorded_host: Vec<&str> = stored["request_headers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|header| {
            header["name"]
                .as_str()
                .is_some_and(|name| name.eq_ignore_ascii_case("host"))
        })
        .filter_map(|header| header["value"].as_str())
        .collect();
    assert_eq!(recorded_host, [target.as_str()]);
}

async fn url_credentials_are_never_recorded(backend: Backend) {
    let upstream = spawn_upstream().await;
    let app = spawn_app_with(backend, AppOptions::default()).await;
    let target = format!("127.0.0.1:{}", upstream.addr.port());
    let response = raw_exchange(
        &app,
        &format!(
            "GET http://user:s3cret@{target}/echo HTTP/1.1\r\nHost: {target}\r\nProxy-Authorization: {}\r\nConnection: close\r\n\r\n",
            proxy_authorization("agent-1", &app.admin_key)
        ),
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let id = header_value(&response, "x-handoffrail-record").expect("record id");
    let stored = record(&app, id).await;
    assert_eq!(stored["url"], format!("http://{target}/echo"));
    assert!(!stored.to_string().contains("s3cret"), "{stored}");
}

/// A TLS tunnel through the proxy to `authority`, opened with `key`, as a hyper client connection.
async fn tunnel(
    app: &TestApp,
    key: &str,
    authority: &str,
) -> hyper::client::conn::http1::SendRequest<Empty<Bytes>> {
    let ca = app.proxy_ca().await;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(
            rustls::pki_types::CertificateDer::from_pem_slice(ca.as_bytes())
                .expect("CA certificate"),
        )
        .expect("root");
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut stream = TcpStream::connect(app.proxy_addr.expect("proxy runs"))
        .await
        .expect("connect");
    let connect = format!(
        "CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\nProxy-Authorization: {}\r\n\r\n",
        proxy_authorization("tunnel-agent", key)
    );
    stream.write_all(connect.as_bytes()).await.expect("CONNECT");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await.expect("CONNECT answer");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
        .expect("TLS with the proxy's leaf");
    let (sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .expect("HTTP over the tunnel");
    tokio::spawn(connection);
    sender
}

fn get(host: &str, path: &str) -> hyper::Request<Empty<Bytes>> {
    hyper::Request::get(path)
        .header("host", host)
        .body(Empty::new())
        .expect("request")
}

async fn app_trusting(backend: Backend, upstream_ca: std::path::PathBuf) -> TestApp {
    spawn_app_with(
        backend,
        AppOptions {
            configure: Box::new(move |config| config.proxy.upstream_ca = Some(upstream_ca)),
            ..Default::default()
        },
    )
    .await
}

async fn a_tunnel_request_for_another_host_is_misdirected(backend: Backend) {
    let tls = spawn_tls_upstream().await;
    let app = app_trusting(backend, tls.ca_pem.clone()).await;
    let authority = format!("localhost:{}", tls.upstream.addr.port());
    let mut sender = tunnel(&app, &app.admin_key, &authority).await;
    let fine = sender
        .send_request(get(&authority, "/echo"))
        .await
        .expect("answered");
    assert_eq!(fine.status(), StatusCode::OK);
    fine.into_body().collect().await.expect("body");
    sender
        .ready()
        .await
        .expect("the tunnel takes another request");
    let forged = sender
        .send_request(get("attacker-vhost.example", "/echo"))
        .await
        .expect("answered");
    assert_eq!(forged.status(), StatusCode::MISDIRECTED_REQUEST);
    assert_eq!(
        tls.upstream.hits(),
        1,
        "the misdirected request never left the proxy"
    );
}

async fn a_revoked_key_ends_its_open_tunnel(backend: Backend) {
    let tls = spawn_tls_upstream().await;
    let app = app_trusting(backend, tls.ca_pem.clone()).await;
    let created = app
        .post(
            "/keys",
            serde_json::json!({"name": "tunnel", "role": "agent"}),
        )
        .await;
    let (id, key) = (
        created.body["id"].as_str().expect("id").to_string(),
        created.body["key"].as_str().expect("key").to_string(),
    );
    let authority = format!("localhost:{}", tls.upstream.addr.port());
    let mut sender = tunnel(&app, &key, &authority).await;
    let before = sender
        .send_request(get(&authority, "/echo"))
        .await
        .expect("answered");
    assert_eq!(before.status(), StatusCode::OK);
    before.into_body().collect().await.expect("body");
    assert_eq!(
        app.delete(&format!("/keys/{id}")).await.status,
        StatusCode::NO_CONTENT
    );
    // The same tunnel, after the revocation: refused and closed, nothing forwarded.
    sender
        .ready()
        .await
        .expect("the tunnel takes another request");
    let after = sender
        .send_request(get(&authority, "/echo"))
        .await
        .expect("answered");
    assert_eq!(after.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        after
            .headers()
            .get("connection")
            .and_then(|value| value.to_str().ok()),
        Some("close")
    );
    assert_eq!(tls.upstream.hits(), 1);
}
