//! `handoffrail proxy`: the proxy alone, on the API server's database and data directory.

use super::*;
use crate::support::{spawn_app_with, AppOptions, Backend};
use crate::upstream::spawn_upstream;
use reqwest::StatusCode;
use serde_json::Value;

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
