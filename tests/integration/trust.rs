//! Per-tenant trusted endpoints through the API.

use crate::on_both_backends;
use crate::support::{fresh_database, init, spawn_app, start_binary_with, Backend, Process};
use reqwest::{Method, StatusCode};
use serde_json::json;

on_both_backends!(
    trusted_endpoints_are_added_listed_and_removed_per_tenant,
    invalid_templates_and_low_roles_are_refused
);

async fn trusted_endpoints_are_added_listed_and_removed_per_tenant(backend: Backend) {
    let app = spawn_app(backend).await;
    let added = app.post("/trusted-endpoints", json!({"url": "https://api.example.com/v1/orders/{id}", "methods": ["get", "GET", "head"]})).await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.text);
    assert_eq!(
        added.body["methods"],
        json!(["GET", "HEAD"]),
        "methods upper-cased and deduplicated"
    );
    let id = added.body["id"].as_str().unwrap_or_default().to_string();
    let second = app
        .post(
            "/trusted-endpoints",
            json!({"url": "https://*.payments.example/{rest:path}"}),
        )
        .await;
    assert_eq!(second.body["methods"], json!([]));

    let listed = app.get("/trusted-endpoints").await;
    let urls: Vec<&str> = listed
        .body
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["url"].as_str())
        .collect();
    assert_eq!(
        urls,
        [
            "https://api.example.com/v1/orders/{id}",
            "https://*.payments.example/{rest:path}"
        ]
    );

    let other = app.key("admin", Some("acme")).await;
    let theirs = app
        .send(Method::GET, "/trusted-endpoints", Some(&other), None)
        .await;
    assert_eq!(theirs.body, json!([]), "another tenant sees none of them");
    let cross = app
        .send(
            Method::DELETE,
            &format!("/trusted-endpoints/{id}"),
            Some(&other),
            None,
        )
        .await;
    assert_eq!(
        cross.status,
        StatusCode::NOT_FOUND,
        "nor can it delete them"
    );

    assert_eq!(
        app.delete(&format!("/trusted-endpoints/{id}")).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.delete(&format!("/trusted-endpoints/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/trusted-endpoints")
            .await
            .body
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

async fn invalid_templates_and_low_roles_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    for url in [
        "ftp://x/y",
        "https://api.example.com@evil.net/x",
        "https://api.*.com/x",
        "https://a.example/x?y=1",
    ] {
        let reply = app.post("/trusted-endpoints", json!({"url": url})).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{url}");
        assert_eq!(reply.body["detail"][0]["loc"], json!(["body", "url"]));
    }
    let reader = app.key("reader", None).await;
    let agent = app.key("agent", None).await;
    for key in [&reader, &agent] {
        let listed = app
            .send(Method::GET, "/trusted-endpoints", Some(key), None)
            .await;
        assert_eq!(
            listed.status,
            StatusCode::FORBIDDEN,
            "the trust list is a writer's"
        );
    }
    for key in [&reader, &agent] {
        let reply = app
            .send(
                Method::POST,
                "/trusted-endpoints",
                Some(key),
                Some(json!({"url": "https://a.example/x"})),
            )
            .await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
    }
    assert_eq!(
        app.get("/trusted-endpoints").await.body,
        json!([]),
        "nothing was stored"
    );
}

/// The `trusted` flag an import of `url` gets from the server's rules right now.
async fn imported_as_trusted(http: &reqwest::Client, base: &str, key: &str, url: &str) -> bool {
    let har = json!({"log": {"entries": [{
        "startedDateTime": "2026-11-21T10:00:00Z", "time": 1,
        "request": {"method": "GET", "url": url}, "response": {"status": 200, "content": {"text": "{}"}}}]}});
    let imported: serde_json::Value = http
        .post(format!("{base}/records"))
        .header("X-API-Key", key)
        .json(&har)
        .send()
        .await
        .expect("import")
        .json()
        .await
        .expect("json");
    let id = imported["ids"][0].as_str().unwrap_or_default();
    let record: serde_json::Value = http
        .get(format!("{base}/records/{id}"))
        .header("X-API-Key", key)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    record["trusted"] == json!(true)
}

fn hangup(server: &Process) {
    // SAFETY: plain kill(2) on our own child's pid.
    assert_eq!(
        unsafe { libc::kill(server.child.id() as i32, libc::SIGHUP) },
        0
    );
}

fn logged(server: &Process, text: &str) -> usize {
    let log = server.log.lock().expect("log lock");
    log.iter().filter(|line| line.contains(text)).count()
}

async fn wait_for_log(server: &Process, text: &str) {
    for _ in 0..100 {
        if logged(server, text) > 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!(
        "no {text:?} in the log: {:?}",
        server.log.lock().expect("log lock")
    );
}

/// SIGHUP re-reads `--rules`; a broken file leaves the rules in force and the server serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_rules_and_a_bad_file_keeps_them() {
    init();
    let dir = tempfile::TempDir::new().expect("dir");
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).expect("rules dir");
    let file = rules.join("trust.toml");
    std::fs::write(
        &file,
        "[[trusted]]\nurl = \"https://a.example/{rest:path}\"\n",
    )
    .expect("write");
    let database = fresh_database(Backend::Sqlite, &dir).await;
    let url = database.url.clone();
    let key = handoffrail::auth::generate_key();
    let rules_arg = rules.display().to_string();
    let mut server = start_binary_with(&url, dir.path(), &key, &["--rules", &rules_arg]);
    let http = reqwest::Client::new();
    let (a, b) = ("https://a.example/v1/x", "https://b.example/v1/x");
    assert!(imported_as_trusted(&http, &server.base, &key, a).await);
    assert!(!imported_as_trusted(&http, &server.base, &key, b).await);

    std::fs::write(
        &file,
        "[[trusted]]\nurl = \"https://b.example/{rest:path}\"\n",
    )
    .expect("write");
    hangup(&server);
    wait_for_log(&server, "rules reloaded").await;
    assert!(
        imported_as_trusted(&http, &server.base, &key, b).await,
        "the new rules are in force"
    );
    assert!(
        !imported_as_trusted(&http, &server.base, &key, a).await,
        "the old ones are gone"
    );

    std::fs::write(&file, "[[trusted]]\nurl = \"not a url\"\n").expect("write");
    hangup(&server);
    wait_for_log(&server, "rules not reloaded").await;
    assert_eq!(logged(&server, "rules reloaded"), 1);
    assert!(
        imported_as_trusted(&http, &server.base, &key, b).await,
        "a bad file keeps the rules in force"
    );

    // SAFETY: as above.
    unsafe { libc::kill(server.child.id() as i32, libc::SIGTERM) };
    let status = tokio::task::spawn_blocking(move || server.child.wait())
        .await
        .expect("wait task")
        .expect("exit status");
    assert!(status.success(), "still a clean process after two SIGHUPs");
}
