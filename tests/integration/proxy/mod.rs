//! The interceptor proxy against real upstreams on loopback, one file per concern; the helpers every one of
//! them uses are here.

mod access;
mod durability;
mod evidence;
mod failures;
mod forwarding;
mod standalone;
mod tunnels;

use crate::support::TestApp;
use crate::upstream::Upstream;
use base64::Engine;
use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;

pub(crate) fn unb64(value: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(value.as_str().unwrap_or_default())
        .expect("base64")
}

/// A client that sends everything through the proxy at `addr` as `agent` with `key`, trusting `root` (PEM)
/// besides the webpki roots.
pub(crate) fn proxied_client(
    addr: &str,
    agent: &str,
    key: &str,
    root: Option<&[u8]>,
) -> reqwest::Client {
    let proxy = reqwest::Proxy::all(format!("http://{addr}"))
        .expect("proxy url")
        .basic_auth(agent, key);
    let mut builder = reqwest::Client::builder().proxy(proxy);
    if let Some(pem) = root {
        builder = builder.add_root_certificate(reqwest::Certificate::from_pem(pem).expect("pem"));
    }
    builder.build().expect("client")
}

pub(crate) fn proxy_addr(app: &TestApp) -> String {
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

pub(crate) fn record_id(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("x-handoffrail-record")
        .and_then(|value| value.to_str().ok())
        .expect("X-HandoffRail-Record on every proxied response")
        .to_string()
}

pub(crate) fn header<'a>(list: &'a Value, name: &str) -> Vec<&'a str> {
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

pub(crate) fn rules_with_route(upstream: &Upstream) -> tempfile::TempDir {
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

/// A client of the proxy that trusts the app's MITM CA, as an agent configured per the README would.
pub(crate) async fn through_proxy_trusting_ca(app: &TestApp, key: &str) -> reqwest::Client {
    let ca = app.proxy_ca().await;
    proxied_client(&proxy_addr(app), "tls-agent", key, Some(ca.as_bytes()))
}
