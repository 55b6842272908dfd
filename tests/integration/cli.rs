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
    assert_eq!(kinds, ["created", "claimed", "completed"], "decision 13");
}

/// The landing page's `handoffrail create` names no agents: a name defaults to its agent's id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_create_without_names_uses_the_ids() {
    let app = spawn_app(Backend::Sqlite).await;
    let key = Some(app.admin_key.as_str());
    let created = stdout_json(
        &handoffrail(
            &app,
            key,
            &[
                "create",
                "--source-id",
                "researcher",
                "--target-id",
                "writer",
                "--summary",
                "Draft the report",
                "--format",
                "json",
            ],
        )
        .await,
    );
    assert_eq!(created["metadata"]["source_agent"]["name"], "researcher");
    assert_eq!(created["metadata"]["target_agent"]["name"], "writer");
    let named = stdout_json(
        &handoffrail(
            &app,
            key,
            &[
                "create",
                "--source-id",
                "r",
                "--source-name",
                "Researcher",
                "--target-id",
                "w",
                "--summary",
                "s",
                "--format",
                "json",
            ],
        )
        .await,
    );
    assert_eq!(named["metadata"]["source_agent"]["name"], "Researcher");
    assert_eq!(named["metadata"]["target_agent"]["name"], "w");
    let incomplete =
        handoffrail(&app, key, &["create", "--source-id", "r", "--summary", "s"]).await;
    assert!(!incomplete.status.success(), "a target is still required");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trust_and_records_commands_drive_the_api() {
    let app = spawn_app(Backend::Sqlite).await;
    let key = Some(app.admin_key.as_str());
    let added = stdout_json(
        &handoffrail(
            &app,
            key,
            &[
                "trust",
                "add",
                "https://api.example.com/v1/orders/{id}",
                "--method",
                "GET",
                "--format",
                "json",
            ],
        )
        .await,
    );
    let id = added["id"].as_str().expect("id").to_string();
    let listed = stdout_json(&handoffrail(&app, key, &["trust", "list", "--format", "json"]).await);
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    let table = handoffrail(&app, key, &["trust", "list"]).await;
    assert!(String::from_utf8_lossy(&table.stdout)
        .contains("GET           https://api.example.com/v1/orders/{id}"));
    assert!(handoffrail(&app, key, &["trust", "remove", &id])
        .await
        .status
        .success());
    let again = handoffrail(&app, key, &["trust", "remove", &id]).await;
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).starts_with("Error: Not found:"));
    let bad = handoffrail(&app, key, &["trust", "add", "ftp://nope"]).await;
    assert_eq!(bad.status.code(), Some(1));

    let har = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/records/orders.har");
    let imported = handoffrail(&app, key, &["records", "import", har]).await;
    assert!(
        String::from_utf8_lossy(&imported.stdout).starts_with("Imported 2 records"),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    let dir = tempfile::TempDir::new().expect("dir");
    let jsonl = dir.path().join("records.jsonl");
    let exported = handoffrail(
        &app,
        key,
        &[
            "records",
            "export",
            "--as",
            "jsonl",
            "--run-id",
            "run-1",
            "--output",
            jsonl.to_str().expect("path"),
        ],
    )
    .await;
    assert!(exported.status.success());
    let lines = std::fs::read_to_string(&jsonl).expect("export written");
    assert_eq!(lines.lines().count(), 2);
    assert!(!lines.contains("fixture-secret"), "redacted on import");
    let reimported = stdout_json(
        &handoffrail(
            &app,
            key,
            &[
                "records",
                "import",
                jsonl.to_str().expect("path"),
                "--format",
                "json",
            ],
        )
        .await,
    );
    assert_eq!(
        (
            reimported["imported"].clone(),
            reimported["already_stored"].as_array().map(Vec::len)
        ),
        (serde_json::json!(0), Some(2)),
        "a JSON-lines export reads back as the records it came from"
    );
    let public_key = stdout_json(&handoffrail(&app, key, &["records", "public-key"]).await);
    assert_eq!(
        public_key["public_key"],
        app.get("/records/public-key").await.body["public_key"]
    );
    let har_export = handoffrail(&app, key, &["records", "export"]).await;
    let document: Value = serde_json::from_slice(&har_export.stdout).expect("HAR");
    assert_eq!(document["log"]["entries"].as_array().map(Vec::len), Some(2));
}

mod evaluate {
    use crate::support::{spawn_app_with, AppOptions, Backend};
    use serde_json::Value;
    use std::process::Output;

    const ROOT: &str = env!("CARGO_MANIFEST_DIR");

    fn fixture(path: &str) -> String {
        format!("{ROOT}/fixtures/{path}")
    }

    async fn handoffrail(env: &[(&str, &str)], args: &[&str]) -> Output {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_handoffrail"));
        command
            .args(args)
            .env_remove("HANDOFFRAIL_API_KEY")
            .env_remove("HANDOFFRAIL_URL");
        for (name, value) in env {
            command.env(name, value);
        }
        command.output().await.expect("cli runs")
    }

    /// The per-claim results and outcome, without what differs between two runs (ids, times).
    fn verdict(output: &Output) -> (Value, Value) {
        let result: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
            panic!(
                "json output ({error}): {}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
        (result["outcome"].clone(), result["per_claim"].clone())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn offline_and_online_give_the_same_verdicts_and_exit_codes() {
        let app = spawn_app_with(
            Backend::Sqlite,
            AppOptions {
                configure: Box::new(|config| {
                    config.rules =
                        Some(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/rules").into())
                }),
                ..Default::default()
            },
        )
        .await;
        let har: Value = serde_json::from_str(
            &std::fs::read_to_string(fixture("records/orders.har")).expect("har"),
        )
        .expect("json");
        assert_eq!(
            app.post("/records", har).await.status,
            reqwest::StatusCode::CREATED
        );
        let online_env = [
            ("HANDOFFRAIL_URL", app.api("")),
            ("HANDOFFRAIL_API_KEY", app.admin_key.clone()),
        ];
        let online_env: Vec<(&str, &str)> = online_env
            .iter()
            .map(|(name, value)| (*name, value.as_str()))
            .collect();
        let records = fixture("records/orders.har");
        let rules = fixture("rules");
        for (payload, exit, outcome, reasons) in [
            (
                "passing-run",
                0,
                "PASS",
                vec!["match", "match", "match", "match"],
            ),
            (
                "caught-hallucination",
                1,
                "CAUGHT",
                vec!["match", "value_mismatch"],
            ),
            (
                "untrusted-endpoint",
                1,
                "CAUGHT",
                vec!["untrusted_endpoint"],
            ),
            ("invalid-claim", 2, "ERROR", vec!["invalid_claim"]),
        ] {
            let path = fixture(&format!("payloads/{payload}.json"));
            let offline = handoffrail(
                &[],
                &[
                    "evaluate",
                    &path,
                    "--records",
                    &records,
                    "--rules",
                    &rules,
                    "--format",
                    "json",
                ],
            )
            .await;
            let online = handoffrail(&online_env, &["evaluate", &path, "--format", "json"]).await;
            assert_eq!(
                offline.status.code(),
                Some(exit),
                "{payload} offline: {}",
                String::from_utf8_lossy(&offline.stderr)
            );
            assert_eq!(
                online.status.code(),
                Some(exit),
                "{payload} online: {}",
                String::from_utf8_lossy(&online.stderr)
            );
            let (offline_outcome, offline_claims) = verdict(&offline);
            assert_eq!(offline_outcome, outcome, "{payload}");
            let found: Vec<&str> = offline_claims
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["reason"].as_str())
                .collect();
            assert_eq!(found, reasons, "{payload}");
            assert_eq!(
                verdict(&online),
                (offline_outcome, offline_claims),
                "{payload}: offline and online agree"
            );
        }
    }

    fn reasons(output: &Output) -> Vec<String> {
        let (_, claims) = verdict(output);
        claims
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|claim| claim["reason"].as_str().map(String::from))
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_tampered_export_is_caught_offline_with_the_public_key() {
        let payload = fixture("payloads/tampered-record.json");
        let rules = fixture("rules");
        let public_key = fixture("records/record-key.pub.json");
        let run = |records: &'static str, key: Option<String>| {
            let payload = payload.clone();
            let rules = rules.clone();
            async move {
                let records = fixture(records);
                let mut args = vec![
                    "evaluate".to_string(),
                    payload,
                    "--records".into(),
                    records,
                    "--rules".into(),
                    rules,
                    "--format".into(),
                    "json".into(),
                ];
                if let Some(key) = key {
                    args.extend(["--public-key".to_string(), key]);
                }
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                handoffrail(&[], &args).await
            }
        };

        let tampered = run("records/orders-tampered.har", Some(public_key.clone())).await;
        assert_eq!(tampered.status.code(), Some(1));
        assert_eq!(
            reasons(&tampered),
            ["evidence_tampered", "evidence_tampered"]
        );

        // The untouched export: the record id in the payload resolves (ids survive), and the forger's figure
        // is simply wrong against the genuine body.
        let sealed = run("records/orders-sealed.har", Some(public_key.clone())).await;
        assert_eq!(sealed.status.code(), Some(1));
        assert_eq!(reasons(&sealed), ["value_mismatch", "match"]);

        // The key given inline works the same as the file.
        let document: Value =
            serde_json::from_str(&std::fs::read_to_string(&public_key).expect("public key file"))
                .expect("json");
        let inline = document["public_key"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let inline = run("records/orders-tampered.har", Some(inline)).await;
        assert_eq!(reasons(&inline), ["evidence_tampered", "evidence_tampered"]);

        // Without the key nothing can be verified: the seals are not honoured, and the CLI says so.
        let unverified = run("records/orders-tampered.har", None).await;
        assert_eq!(reasons(&unverified), ["evidence_missing", "match"]);
        let warning = String::from_utf8_lossy(&unverified.stderr);
        assert!(
            warning.contains("2 record(s)") && warning.contains("--public-key"),
            "{warning}"
        );

        let bad = run("records/orders-sealed.har", Some("not-a-key".into())).await;
        assert_eq!(bad.status.code(), Some(64));
        assert!(
            String::from_utf8_lossy(&bad.stderr).contains("not an Ed25519 public key"),
            "{}",
            String::from_utf8_lossy(&bad.stderr)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn text_and_junit_output_read_well_in_ci() {
        let dir = tempfile::TempDir::new().expect("dir");
        let report = dir.path().join("report.xml");
        let records = fixture("records/orders.har");
        let payload = fixture("payloads/caught-hallucination.json");
        let text = handoffrail(&[], &["evaluate", &payload, "--records", &records]).await;
        let stdout = String::from_utf8_lossy(&text.stdout);
        assert_eq!(text.status.code(), Some(1));
        assert!(stdout.contains("PASS    #0 get_order exact $.order.status: claimed \"shipped\", actual \"shipped\" [match]"), "{stdout}");
        assert!(stdout.contains("CAUGHT  #1 get_order field_extraction $.order.total: claimed \"99.00\", actual 89.5 [value_mismatch] — claimed 99.00, record has 89.5 at $.order.total"), "{stdout}");
        assert!(
            stdout.contains("CAUGHT: 1 pass, 1 caught, 0 error"),
            "{stdout}"
        );
        // Range and presence claims state no value, so their lines show only what the record has.
        let passing = fixture("payloads/passing-run.json");
        let text = handoffrail(&[], &["evaluate", &passing, "--records", &records]).await;
        let stdout = String::from_utf8_lossy(&text.stdout);
        assert!(
            stdout.contains("PASS    #2 get_order range_threshold $.order.items[*].qty: actual ["),
            "{stdout}"
        );
        let junit = handoffrail(
            &[],
            &[
                "evaluate",
                &payload,
                "--records",
                &records,
                "--format",
                "junit",
                "--output",
                report.to_str().expect("path"),
            ],
        )
        .await;
        assert_eq!(junit.status.code(), Some(1));
        let xml = std::fs::read_to_string(&report).expect("report written");
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"handoffrail evaluate\" tests=\"2\" failures=\"1\" errors=\"0\""), "{xml}");
        assert!(xml.contains("<failure message=\"value_mismatch\">claimed 99.00, record has 89.5 at $.order.total</failure>"), "{xml}");
        assert_eq!(
            String::from_utf8_lossy(&junit.stdout),
            xml,
            "--output writes what stdout shows"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn usage_and_input_errors_exit_64_and_infrastructure_2() {
        let records = fixture("records/orders.har");
        let payload = fixture("payloads/passing-run.json");
        let cases: Vec<(Vec<&str>, i32)> = vec![
            (vec!["evaluate"], 64),
            (vec!["evaluate", &payload, "--rules", "rules"], 64),
            (
                vec![
                    "evaluate",
                    "/nonexistent/payload.json",
                    "--records",
                    &records,
                ],
                64,
            ),
            (vec!["evaluate", &records, "--records", &records], 64),
            (
                vec!["evaluate", &payload, "--records", "/nonexistent.har"],
                64,
            ),
            (vec!["evaluate", &payload], 64),
        ];
        for (args, code) in cases {
            let output = handoffrail(&[], &args).await;
            assert_eq!(
                output.status.code(),
                Some(code),
                "{args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let unreachable = handoffrail(
            &[
                ("HANDOFFRAIL_URL", "http://127.0.0.1:9/api/v1"),
                ("HANDOFFRAIL_API_KEY", "hr_x"),
            ],
            &["evaluate", &payload],
        )
        .await;
        assert_eq!(
            unreachable.status.code(),
            Some(2),
            "an unreachable server is an ERROR, never a PASS"
        );
    }
}

/// Offline commands run outside the server's data directory refuse to create a database or a CA nobody uses,
/// naming where they looked; `--init` creates them.
#[test]
fn offline_commands_create_nothing_unless_asked() {
    let dir = tempfile::TempDir::new().expect("dir");
    let data_dir = dir.path().join("not-the-servers");
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_handoffrail"))
            .args(args)
            .arg("--data-dir")
            .arg(&data_dir)
            .env_remove("HANDOFFRAIL_DATABASE_URL")
            .env_remove("HANDOFFRAIL_DATA_DIR")
            .output()
            .expect("runs")
    };
    let refused = run(&["keys", "create", "--name", "ops"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains(&format!(
            "no database at {}",
            data_dir.join("handoffrail.db").display()
        )) && stderr.contains("--init"),
        "{stderr}"
    );
    let exported = run(&["ca", "export"]);
    let stderr = String::from_utf8_lossy(&exported.stderr);
    assert!(!exported.status.success());
    assert!(
        stderr.contains(&format!("no CA in {}", data_dir.display())) && stderr.contains("--init"),
        "{stderr}"
    );
    assert!(!data_dir.exists(), "nothing was created");

    let created = run(&[
        "keys", "create", "--name", "ops", "--init", "--format", "json",
    ]);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    assert!(stdout_json(&created)["key"]
        .as_str()
        .is_some_and(|key| key.starts_with("hr_")));
    let exported = run(&["ca", "export", "--init"]);
    assert!(String::from_utf8_lossy(&exported.stdout).starts_with("-----BEGIN CERTIFICATE-----"));
    // Now that they exist, no flag is needed.
    assert!(run(&["keys", "create", "--name", "again"]).status.success());
    assert!(run(&["ca", "export"]).status.success());
}

/// `create --claims` sends the sender's claims (an evaluation payload or a list of claims) with its policies;
/// `get` and `list` show the verdict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_creates_verified_handoffs_and_shows_their_verdicts() {
    let app = spawn_app(Backend::Sqlite).await;
    let key = Some(app.admin_key.as_str());
    let order = br#"{"order": {"status": "shipped", "total": 89.5}}"#;
    crate::evaluations::record(&app, "default", "run-c", "get_order", order).await;
    let dir = tempfile::tempdir().expect("dir");
    let payload = dir.path().join("claims.json");
    std::fs::write(
        &payload,
        serde_json::json!({"run_id": "run-c", "agent_id": "sales-01", "answer": "ignored here", "claims": [
            {"action_name": "get_order", "verification_mode": "exact", "json_path": "$.order.status", "claimed_value": "shipped"},
            {"action_name": "get_order", "verification_mode": "field_extraction", "json_path": "$.order.total", "claimed_value": "99.00"}
        ]})
        .to_string(),
    )
    .expect("write");
    let payload = payload.to_string_lossy().to_string();
    let create = |policy: &'static str| {
        let payload = payload.clone();
        let app = &app;
        async move {
            handoffrail(
                app,
                key,
                &[
                    "create",
                    "--source-id",
                    "researcher",
                    "--target-id",
                    "writer",
                    "--summary",
                    "Bill order 7",
                    "--claims",
                    &payload,
                    "--on-caught",
                    policy,
                    "--format",
                    "json",
                ],
            )
            .await
        }
    };
    let flagged = stdout_json(&create("flag").await);
    assert_eq!(
        (
            flagged["status"].clone(),
            flagged["verification"]["outcome"].clone(),
            flagged["verification"]["policy"].clone()
        ),
        (
            Value::from("created"),
            Value::from("CAUGHT"),
            Value::from("flag")
        )
    );
    let rejected = create("reject").await;
    assert!(!rejected.status.success());
    assert!(
        String::from_utf8_lossy(&rejected.stderr).contains("policy is reject"),
        "{}",
        String::from_utf8_lossy(&rejected.stderr)
    );

    let id = flagged["id"].as_str().unwrap_or_default();
    let shown = handoffrail(&app, key, &["get", id]).await;
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        text.contains("Verdict   CAUGHT (1 pass, 1 caught, 0 error; policy flag; evaluation "),
        "{text}"
    );
    assert!(
        text.contains("claim 1 (get_order): CAUGHT value_mismatch — claimed 99.00, record has 89.5 at $.order.total"),
        "{text}"
    );
    let listed = handoffrail(&app, key, &["list", "--verification", "CAUGHT"]).await;
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(text.contains(id) && text.contains("CAUGHT"), "{text}");
    assert!(text.contains("Showing 1 of 1"), "{text}");

    // A bare list of claims, with the default policy: held for a human.
    let claims = dir.path().join("list.json");
    std::fs::write(
        &claims,
        r#"[{"action_name": "get_order", "verification_mode": "exact", "json_path": "$.order.status", "claimed_value": "cancelled", "record_id": "0190b8a4-0000-7000-8000-000000000000"}]"#,
    )
    .expect("write");
    let held = stdout_json(
        &handoffrail(
            &app,
            key,
            &[
                "create",
                "--source-id",
                "a",
                "--target-id",
                "b",
                "--summary",
                "s",
                "--claims",
                &claims.to_string_lossy(),
                "--format",
                "json",
            ],
        )
        .await,
    );
    assert_eq!(held["status"], "awaiting_human");
    std::fs::write(&claims, r#"{"no": "claims"}"#).expect("write");
    let refused = handoffrail(
        &app,
        key,
        &[
            "create",
            "--source-id",
            "a",
            "--target-id",
            "b",
            "--summary",
            "s",
            "--claims",
            &claims.to_string_lossy(),
        ],
    )
    .await;
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("expected a list of claims"));
}
