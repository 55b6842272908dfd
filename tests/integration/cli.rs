//! The `handoffrail` client commands against a running server, and `keys create` against a database.

use crate::support::{spawn_app, Backend, TestApp};
use serde_json::Value;
use std::process::Output;

async fn handoffrail(app: &TestApp, key: Option<&str>, args: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_handoffrail"));
    command
        .args(args)
        .env("HANDOFFRAIL_URL", app.api(""))
        .env_remove("HANDOFFRAIL_API_KEY");
    if let Some(key) = key {
        command.env("HANDOFFRAIL_API_KEY", key);
    }
    command.output().await.expect("cli runs")
}

fn stdout_json(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("json output")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_runs_a_packet_through_its_lifecycle() {
    let app = spawn_app(Backend::Sqlite).await;
    let key = Some(app.admin_key.as_str());
    let created = stdout_json(
        &handoffrail(
            &app,
            key,
            &[
                "create",
                "--source-id",
                "sales-01",
                "--source-name",
                "Sales",
                "--target-id",
                "billing-01",
                "--target-name",
                "Billing",
                "--summary",
                "Upgrade to business",
                "--priority",
                "high",
                "--tag",
                "upgrade",
                "--format",
                "json",
            ],
        )
        .await,
    );
    let id = created["id"].as_str().expect("id").to_string();
    assert_eq!(created["metadata"]["tags"], serde_json::json!(["upgrade"]));
    assert_eq!(created["metadata"]["priority"], "high");

    let shown = handoffrail(&app, key, &["get", &id]).await;
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.status.success());
    assert!(
        text.contains("Upgrade to business") && text.contains("created"),
        "{text}"
    );

    let listed = handoffrail(&app, key, &["list", "--status", "created"]).await;
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(
        text.contains(&id) && text.contains("Showing 1 of 1"),
        "{text}"
    );

    let claimed = stdout_json(
        &handoffrail(
            &app,
            key,
            &["claim", &id, "--agent-id", "billing-02", "--format", "json"],
        )
        .await,
    );
    assert_eq!(
        claimed["metadata"]["target_agent"]["name"], "billing-02",
        "name defaults to the id"
    );
    let completed =
        stdout_json(&handoffrail(&app, key, &["--format", "json", "complete", &id]).await);
    assert_eq!(completed["status"], "completed");

    let history = stdout_json(&handoffrail(&app, key, &["history", &id, "--format", "json"]).await);
    let kinds: Vec<&str> = history["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["event_type"].as_str())
        .collect();
    assert_eq!(kinds, ["created", "claimed", "in_progress", "completed"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_creates_from_a_file_and_answers_checkpoints() {
    let app = spawn_app(Backend::Sqlite).await;
    let key = Some(app.admin_key.as_str());
    let dir = tempfile::TempDir::new().expect("dir");
    let file = dir.path().join("packet.json");
    let mut body = crate::support::packet_body("a", "b", "needs approval");
    body["hitl"] = serde_json::json!({"reason": "refund over limit"});
    std::fs::write(&file, body.to_string()).expect("write");
    let created = stdout_json(
        &handoffrail(
            &app,
            key,
            &[
                "create",
                "--file",
                file.to_str().expect("path"),
                "--format",
                "json",
            ],
        )
        .await,
    );
    assert_eq!(created["status"], "awaiting_human");
    let id = created["id"].as_str().expect("id");
    let answered = stdout_json(
        &handoffrail(
            &app,
            key,
            &[
                "respond", id, "-r", "approved", "-b", "ann", "-n", "fine", "--format", "json",
            ],
        )
        .await,
    );
    assert_eq!(
        (
            answered["status"].clone(),
            answered["hitl"]["response"].clone()
        ),
        (serde_json::json!("claimed"), serde_json::json!("approved"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_failures_are_one_line_with_a_nonzero_exit() {
    let app = spawn_app(Backend::Sqlite).await;
    let cases: [(Option<&str>, Vec<&str>, &str); 4] = [
        (
            None,
            vec!["list"],
            "Error: API key required. Use --api-key or set HANDOFFRAIL_API_KEY.",
        ),
        (
            Some("hr_wrong"),
            vec!["list"],
            "Error: Authentication failed: Invalid API key",
        ),
        (
            Some(app.admin_key.as_str()),
            vec!["get", "6f1c0a52-3f0e-4c7a-9f8e-2b1d0c3e4f5a"],
            "Error: Not found: Packet 6f1c0a52-3f0e-4c7a-9f8e-2b1d0c3e4f5a not found",
        ),
        (
            Some(app.admin_key.as_str()),
            vec!["get", "nope"],
            "Error: Validation error: path.packet_id: Input should be a valid UUID",
        ),
    ];
    for (key, args, expected) in cases {
        let output = handoffrail(&app, key, &args).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.starts_with(expected), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    }
    let refused = handoffrail(
        &app,
        Some(&app.admin_key),
        &["--server-url", "http://127.0.0.1:9/api/v1", "list"],
    )
    .await;
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).starts_with("Error: Connection error:"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_create_writes_a_working_key_into_the_database() {
    let app = spawn_app(Backend::Sqlite).await;
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_handoffrail"))
        .args([
            "keys",
            "create",
            "--name",
            "ops",
            "--role",
            "reader",
            "--tier",
            "pro",
            "--format",
            "json",
            "--database-url",
            &app.database_url,
        ])
        .output()
        .await
        .expect("keys create runs");
    let created = stdout_json(&output);
    assert_eq!(
        (created["role"].clone(), created["tier"].clone()),
        (serde_json::json!("reader"), serde_json::json!("pro"))
    );
    let key = created["key"].as_str().expect("plaintext");
    let reply = app
        .send(reqwest::Method::GET, "/packets", Some(key), None)
        .await;
    assert_eq!(reply.status, reqwest::StatusCode::OK);
    let bad_role = tokio::process::Command::new(env!("CARGO_BIN_EXE_handoffrail"))
        .args([
            "keys",
            "create",
            "--name",
            "x",
            "--role",
            "root",
            "--database-url",
            &app.database_url,
        ])
        .output()
        .await
        .expect("runs");
    assert_eq!(bad_role.status.code(), Some(2), "usage errors exit 2");
}
