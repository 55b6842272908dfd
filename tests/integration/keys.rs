//! API keys: bootstrap, administration, roles and tenant scoping (docs/api.md §1.3, docs/api.md §5.1, docs/api.md §5.3).

use crate::on_both_backends;
use crate::support::{fresh_database, packet_body, spawn_app, spawn_app_with, AppOptions, Backend};
use handoffrail::config::ServeConfig;
use handoffrail::server::Server;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

on_both_backends!(
    created_key_is_shown_once_and_listed_without_secret,
    roles_limit_what_a_key_may_do,
    revoked_key_is_refused_and_cannot_be_revoked_twice,
    rotation_replaces_the_key_and_keeps_its_attributes,
    keys_of_another_tenant_are_invisible,
    empty_database_bootstraps_one_admin_key,
    seeded_admin_key_is_used_as_given,
    revocation_reaches_other_instances_within_the_cache_ttl,
);

fn find<'a>(keys: &'a Value, name: &str) -> &'a Value {
    keys.as_array()
        .and_then(|keys| keys.iter().find(|key| key["name"] == name))
        .unwrap_or(&Value::Null)
}

async fn created_key_is_shown_once_and_listed_without_secret(backend: Backend) {
    let app = spawn_app(backend).await;
    let reply = app
        .post(
            "/keys",
            json!({"name": "ci", "role": "writer", "tier": "pro"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let plaintext = reply.body["key"].as_str().unwrap_or_default().to_string();
    assert!(
        handoffrail::auth::is_well_formed_key(&plaintext),
        "{plaintext}"
    );
    assert_eq!(reply.body["key_prefix"], plaintext[..8]);
    assert_eq!(reply.body["tenant_id"], "default");
    assert_eq!(reply.body["role"], "writer");
    assert_eq!(reply.body["tier"], "pro");
    assert_eq!(reply.body["revoked"], false);
    let listed = app.get("/keys").await;
    assert_eq!(listed.status, StatusCode::OK);
    let entry = find(&listed.body, "ci");
    assert_eq!(entry["key"], Value::Null, "plaintext never listed");
    assert_eq!(entry["id"], reply.body["id"]);
    assert!(!listed.text.contains(&plaintext));

    let default_role = app.post("/keys", json!({"name": "plain"})).await;
    assert_eq!(
        (
            default_role.body["role"].clone(),
            default_role.body["tier"].clone()
        ),
        (json!("admin"), json!("business"))
    );
    let works = app
        .send(Method::GET, "/packets", Some(&plaintext), None)
        .await;
    assert_eq!(works.status, StatusCode::OK);
}

async fn roles_limit_what_a_key_may_do(backend: Backend) {
    let app = spawn_app(backend).await;
    let reader = app.key("reader", None).await;
    let agent = app.key("agent", None).await;
    let writer = app.key("writer", None).await;
    let pid = app.create_packet(packet_body("a", "b", "x")).await["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let claim = json!({"agent_id": "b", "agent_name": "B"});
    // (key, method, path, body, expected status)
    let cases: Vec<(&str, Method, String, Option<Value>, StatusCode)> = vec![
        (
            &reader,
            Method::GET,
            "/packets".into(),
            None,
            StatusCode::OK,
        ),
        (
            &reader,
            Method::GET,
            format!("/packets/{pid}"),
            None,
            StatusCode::OK,
        ),
        (
            &reader,
            Method::POST,
            "/packets".into(),
            Some(packet_body("a", "b", "r")),
            StatusCode::FORBIDDEN,
        ),
        (
            &reader,
            Method::POST,
            format!("/packets/{pid}/claim"),
            Some(claim.clone()),
            StatusCode::FORBIDDEN,
        ),
        (
            &agent,
            Method::POST,
            "/packets".into(),
            Some(packet_body("a", "b", "r")),
            StatusCode::FORBIDDEN,
        ),
        (
            &agent,
            Method::DELETE,
            format!("/packets/{pid}"),
            None,
            StatusCode::FORBIDDEN,
        ),
        (
            &agent,
            Method::POST,
            format!("/packets/{pid}/claim"),
            Some(claim),
            StatusCode::OK,
        ),
        (
            &agent,
            Method::PATCH,
            format!("/packets/{pid}"),
            Some(json!({"status": "in_progress"})),
            StatusCode::OK,
        ),
        (
            &writer,
            Method::GET,
            "/keys".into(),
            None,
            StatusCode::FORBIDDEN,
        ),
        (
            &writer,
            Method::POST,
            "/keys".into(),
            Some(json!({"name": "x"})),
            StatusCode::FORBIDDEN,
        ),
        (
            &writer,
            Method::POST,
            "/packets".into(),
            Some(packet_body("a", "b", "w")),
            StatusCode::CREATED,
        ),
    ];
    for (key, method, path, body, expected) in cases {
        let reply = app.send(method.clone(), &path, Some(key), body).await;
        assert_eq!(reply.status, expected, "{method} {path}: {}", reply.text);
    }
    let denied = app
        .send(
            Method::POST,
            "/packets",
            Some(&reader),
            Some(packet_body("a", "b", "r")),
        )
        .await;
    assert_eq!(
        denied.body["detail"],
        "Insufficient permissions. Required role: writer, current role: reader"
    );
}

async fn revoked_key_is_refused_and_cannot_be_revoked_twice(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app
        .post("/keys", json!({"name": "temp", "role": "reader"}))
        .await;
    let key = created.body["key"].as_str().unwrap_or_default().to_string();
    let id = created.body["id"].as_str().unwrap_or_default().to_string();
    assert_eq!(
        app.delete(&format!("/keys/{id}")).await.status,
        StatusCode::NO_CONTENT
    );
    let refused = app.send(Method::GET, "/packets", Some(&key), None).await;
    assert_eq!(
        (refused.status, refused.body),
        (
            StatusCode::FORBIDDEN,
            json!({"detail": "API key has been revoked"})
        )
    );
    let again = app.delete(&format!("/keys/{id}")).await;
    assert_eq!(
        (again.status, again.body),
        (
            StatusCode::CONFLICT,
            json!({"detail": format!("API key {id} is already revoked")})
        )
    );
    let listed = app.get("/keys").await;
    assert_eq!(
        find(&listed.body, "temp")["revoked"],
        true,
        "revoked keys stay listed"
    );
    let unknown = uuid::Uuid::new_v4();
    let missing = app.delete(&format!("/keys/{unknown}")).await;
    assert_eq!(
        (missing.status, missing.body),
        (
            StatusCode::NOT_FOUND,
            json!({"detail": format!("API key {unknown} not found")})
        )
    );
}

async fn rotation_replaces_the_key_and_keeps_its_attributes(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app
        .post(
            "/keys",
            json!({"name": "bot", "role": "agent", "tier": "pro", "tenant_id": "default"}),
        )
        .await;
    let old_key = created.body["key"].as_str().unwrap_or_default().to_string();
    let id = created.body["id"].as_str().unwrap_or_default().to_string();
    let rotated = app.post(&format!("/keys/{id}/rotate"), json!({})).await;
    assert_eq!(rotated.status, StatusCode::CREATED, "{}", rotated.text);
    assert_eq!(rotated.body["name"], "bot (rotated)");
    assert_eq!(
        (rotated.body["role"].clone(), rotated.body["tier"].clone()),
        (json!("agent"), json!("pro"))
    );
    assert_ne!(rotated.body["id"], created.body["id"]);
    let new_key = rotated.body["key"].as_str().unwrap_or_default().to_string();
    assert_ne!(new_key, old_key);
    assert_eq!(
        app.send(Method::GET, "/packets", Some(&new_key), None)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.send(Method::GET, "/packets", Some(&old_key), None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let twice = app.post(&format!("/keys/{id}/rotate"), json!({})).await;
    assert_eq!(twice.status, StatusCode::CONFLICT);
    assert_eq!(
        twice.body["detail"],
        format!("API key {id} is already revoked — cannot rotate")
    );
    let missing = app
        .post(&format!("/keys/{}/rotate", uuid::Uuid::new_v4()), json!({}))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

async fn keys_of_another_tenant_are_invisible(backend: Backend) {
    let app = spawn_app(backend).await;
    let other_admin = app.key("admin", Some("acme")).await;
    let mine = app.post("/keys", json!({"name": "mine"})).await;
    let my_id = mine.body["id"].as_str().unwrap_or_default().to_string();
    let theirs = app
        .send(Method::GET, "/keys", Some(&other_admin), None)
        .await;
    assert!(find(&theirs.body, "mine").is_null());
    assert!(theirs
        .body
        .as_array()
        .is_some_and(|keys| keys.iter().all(|key| key["tenant_id"] == "acme")));
    for (method, path) in [
        (Method::DELETE, format!("/keys/{my_id}")),
        (Method::POST, format!("/keys/{my_id}/rotate")),
    ] {
        let reply = app
            .send(method.clone(), &path, Some(&other_admin), Some(json!({})))
            .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{method} {path}");
    }
    let still = app
        .send(Method::GET, "/packets", mine.body["key"].as_str(), None)
        .await;
    assert_eq!(still.status, StatusCode::OK);
}

async fn empty_database_bootstraps_one_admin_key(backend: Backend) {
    crate::support::init();
    let dir = tempfile::TempDir::new().expect("dir");
    let database = fresh_database(backend, &dir).await;
    let url = database.url.clone();
    let mut config = ServeConfig::with_data_dir(dir.path().to_path_buf());
    config.database_url = Some(url);
    let first = Server::bind(config.clone()).await.expect("first start");
    let key = first
        .bootstrap_key()
        .expect("first start creates a key")
        .to_string();
    let store = first.store();
    drop(first);
    let found = store
        .find_api_key_by_hash(&handoffrail::auth::hash_key(&key))
        .await
        .expect("lookup");
    let found = found.expect("bootstrap key stored");
    assert_eq!(
        (
            found.role.as_str(),
            found.tier.as_str(),
            found.tenant_id.as_str()
        ),
        ("admin", "business", "default")
    );
    let second = Server::bind(config).await.expect("second start");
    assert!(
        second.bootstrap_key().is_none(),
        "a database with a key is not bootstrapped again"
    );
    assert_eq!(store.list_api_keys("default").await.expect("list").len(), 1);
}

async fn seeded_admin_key_is_used_as_given(backend: Backend) {
    let app = spawn_app(backend).await;
    // spawn_app seeds HANDOFFRAIL_ADMIN_KEY; it works and no random key was made besides it.
    let keys = app.get("/keys").await;
    assert_eq!(keys.status, StatusCode::OK);
    assert_eq!(keys.body.as_array().map(Vec::len), Some(1));
    assert_eq!(keys.body[0]["key_prefix"], app.admin_key[..8]);
    let dir = tempfile::TempDir::new().expect("dir");
    let mut config = ServeConfig::with_data_dir(dir.path().to_path_buf());
    config.database_url = Some(app.database_url.clone());
    config.admin_key = Some("hr_not-a-real-key".into());
    let refused = Server::bind(config).await;
    assert!(refused.is_err(), "a malformed seed key is refused at start");
}

async fn revocation_reaches_other_instances_within_the_cache_ttl(backend: Backend) {
    let first = spawn_app(backend).await;
    let second = spawn_app_with(
        backend,
        AppOptions {
            database_url: Some(first.database_url.clone()),
            configure: Box::new(|config| config.key_cache_seconds = 1),
            ..Default::default()
        },
    )
    .await;
    let created = first
        .post("/keys", json!({"name": "shared", "role": "reader"}))
        .await;
    let key = created.body["key"].as_str().unwrap_or_default().to_string();
    let id = created.body["id"].as_str().unwrap_or_default().to_string();
    assert_eq!(
        second
            .send(Method::GET, "/packets", Some(&key), None)
            .await
            .status,
        StatusCode::OK,
        "cached on the second"
    );
    assert_eq!(
        first
            .send(Method::GET, "/packets", Some(&key), None)
            .await
            .status,
        StatusCode::OK,
        "cached on the first"
    );
    assert_eq!(
        first.delete(&format!("/keys/{id}")).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        first
            .send(Method::GET, "/packets", Some(&key), None)
            .await
            .status,
        StatusCode::FORBIDDEN,
        "the revoking instance refuses at once"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        second
            .send(Method::GET, "/packets", Some(&key), None)
            .await
            .status,
        StatusCode::FORBIDDEN,
        "another instance refuses once its cache entry is older than the TTL"
    );
}

/// A first start that cannot bind a port prints no admin key and leaves the bootstrap to the next start, which
/// prints one (with the real binary, on the embedded default database).
#[test]
fn a_start_that_fails_to_bind_prints_no_key_and_the_next_start_does() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = tempfile::TempDir::new().expect("dir");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let busy_port = busy.local_addr().expect("addr").port().to_string();
    let serve = |port: &str, proxy_port: &str| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_handoffrail"));
        command
            .args(["serve", "--host", "127.0.0.1", "--port", port])
            .args(["--proxy-port", proxy_port, "--data-dir"])
            .arg(dir.path())
            .env_remove("HANDOFFRAIL_ADMIN_KEY")
            .env_remove("HANDOFFRAIL_DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        command
    };
    for (port, proxy_port) in [(busy_port.as_str(), "0"), ("0", busy_port.as_str())] {
        let failed = serve(port, proxy_port).output().expect("runs");
        let stderr = String::from_utf8_lossy(&failed.stderr);
        assert!(!failed.status.success(), "a busy port fails the start");
        assert!(stderr.contains("binding"), "{stderr}");
        assert!(
            !stderr.contains("admin key") && !stderr.contains("hr_"),
            "no key is shown by a start that failed: {stderr}"
        );
    }
    let mut started = serve("0", "0").spawn().expect("starts");
    let lines = BufReader::new(started.stderr.take().expect("stderr")).lines();
    let key = lines
        .map_while(Result::ok)
        .skip_while(|line| !line.contains("first admin key"))
        .find_map(|line| {
            line.trim()
                .strip_prefix("hr_")
                .map(|rest| format!("hr_{rest}"))
        });
    let _ = started.kill();
    let _ = started.wait();
    let key = key.expect("the next start shows the key");
    assert!(handoffrail::auth::is_well_formed_key(&key), "{key}");
}
