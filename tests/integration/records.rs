//! The records API: one record with its verification status, and the public key.

use crate::on_both_backends;
use crate::store::{evidence, flip_stored_body_byte};
use crate::support::{
    fresh_database, spawn_app, spawn_app_with, AppOptions, Backend, TestDatabase,
};
use base64::Engine;
use handoffrail::records::RecordKey;
use handoffrail::store::{self, StoreOptions};
use reqwest::StatusCode;
use serde_json::json;
use std::sync::Arc;
use tempfile::TempDir;

on_both_backends!(
    a_stored_record_reads_back_verified_and_tampering_shows,
    the_public_key_is_the_servers_record_key,
    records_list_newest_first_with_filters_and_cursor,
    har_import_is_redacted_sealed_and_usable_as_evidence,
    native_records_reimport_and_bad_imports_are_refused,
    exports_carry_verifiable_records,
    an_export_of_any_record_imports_again,
    sealed_imports_keep_ids_and_a_tampered_copy_stays_caught,
    a_record_id_just_handed_out_is_waited_for,
    a_record_shows_its_trust_now_beside_its_trust_at_capture,
);

/// `trusted` is the trust the record was captured with; `trusted_now` is what an evaluation would decide now,
/// from the tenant's trusted endpoints as they are.
async fn a_record_shows_its_trust_now_beside_its_trust_at_capture(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = RecordKey::load_or_create(app.data_dir()).expect("the server's record key");
    let recorder = store::open(&app.database_url, &StoreOptions::default())
        .await
        .expect("store");
    let mut record = evidence(
        "default",
        "run",
        "get_order",
        "a",
        1_700_000_000_000_000,
        b"{}",
    );
    record.trusted = false;
    let sealed = key.seal(record);
    recorder
        .insert_records(std::slice::from_ref(&sealed))
        .await
        .expect("insert");
    let path = format!("/records/{}", sealed.record.id);
    let trust = |body: &serde_json::Value| (body["trusted"].clone(), body["trusted_now"].clone());
    assert_eq!(
        trust(&app.get(&path).await.body),
        (json!(false), json!(true)),
        "nothing is trusted yet: the gate is off"
    );
    app.post(
        "/trusted-endpoints",
        json!({"url": "https://other.example.com/{rest:path}"}),
    )
    .await
    .succeeded();
    assert_eq!(
        trust(&app.get(&path).await.body),
        (json!(false), json!(false))
    );
    app.post(
        "/trusted-endpoints",
        json!({"url": "https://api.example.com/v1/orders/{id}"}),
    )
    .await
    .succeeded();
    assert_eq!(
        trust(&app.get(&path).await.body),
        (json!(false), json!(true)),
        "trusted now, though not when captured"
    );
}

/// The proxy answers with `X-HandoffRail-Record` before the record is written: a GET of that id right away
/// waits for it (as the evaluator does) instead of answering 404; an id that is not fresh is 404 at once.
async fn a_record_id_just_handed_out_is_waited_for(backend: Backend) {
    let app = spawn_app(backend).await;
    let (key, recorder) = app.recorder().await;
    let pending = key.seal(evidence(
        "default",
        "run",
        "get_order",
        "a",
        handoffrail::timestamp::Timestamp::now().micros(),
        br#"{"ok": true}"#,
    ));
    let id = pending.record.id;
    let writer = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(800)).await;
        recorder
            .insert_records(std::slice::from_ref(&pending))
            .await
            .expect("late insert");
    });
    let fetched = app.get(&format!("/records/{id}")).await;
    writer.await.expect("writer");
    assert_eq!(fetched.status, StatusCode::OK, "{}", fetched.text);
    assert_eq!(fetched.body["id"], id.to_string());
    let unknown = uuid::Uuid::new_v4();
    let missing = app.get(&format!("/records/{unknown}")).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

async fn a_stored_record_reads_back_verified_and_tampering_shows(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = RecordKey::load_or_create(app.data_dir()).expect("the server's record key");
    let recorder = store::open(&app.database_url, &StoreOptions::default())
        .await
        .expect("second handle on the database");
    let body = br#"{"order": {"id": 7, "total": 89.5}}"#;
    let sealed = key.seal(evidence(
        "default",
        "run-1",
        "get_order",
        "sales-01",
        1_700_000_000_000_000,
        body,
    ));
    let id = sealed.record.id;
    recorder
        .insert_records(std::slice::from_ref(&sealed))
        .await
        .expect("insert");

    let reply = app.get(&format!("/records/{id}")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["signature_valid"], true);
    assert_eq!(reply.body["integrity"], "valid");
    assert_eq!(reply.body["seal"]["sha256"], sealed.seal.sha256);
    assert_eq!(
        reply.body["request_headers"][1],
        json!({"name": "authorization", "value": "[REDACTED]"})
    );
    let stored_body = base64::engine::general_purpose::STANDARD
        .decode(reply.body["response_body"].as_str().unwrap_or_default())
        .expect("base64 body");
    assert_eq!(stored_body, body);

    let other = app.key("admin", Some("acme")).await;
    let hidden = app
        .send(
            reqwest::Method::GET,
            &format!("/records/{id}"),
            Some(&other),
            None,
        )
        .await;
    assert_eq!(
        hidden.status,
        StatusCode::NOT_FOUND,
        "another tenant's record is not found"
    );
    assert_eq!(
        app.get(&format!("/records/{}", uuid::Uuid::now_v7()))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/records/not-a-uuid").await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    flip_stored_body_byte(backend, &app.database_url, id).await;
    let tampered = app.get(&format!("/records/{id}")).await;
    assert_eq!(tampered.status, StatusCode::OK);
    assert_eq!(tampered.body["signature_valid"], false);
    assert_eq!(tampered.body["integrity"], "digest_mismatch");
}

async fn the_public_key_is_the_servers_record_key(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = RecordKey::load_or_create(app.data_dir()).expect("record key");
    let reply = app.get("/records/public-key").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["algorithm"], "ed25519");
    assert_eq!(reply.body["key_id"], key.key_id());
    assert_eq!(reply.body["public_key"], key.public_key_base64());
    let reader = app.key("reader", None).await;
    assert_eq!(
        app.send(
            reqwest::Method::GET,
            "/records/public-key",
            Some(&reader),
            None
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        app.send(reqwest::Method::GET, "/records/public-key", None, None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

async fn records_list_newest_first_with_filters_and_cursor(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = RecordKey::load_or_create(app.data_dir()).expect("record key");
    let recorder = store::open(&app.database_url, &StoreOptions::default())
        .await
        .expect("store");
    let base = 1_700_000_000_000_000;
    let mut records = Vec::new();
    for (index, (run, action, agent)) in [
        ("r1", "get_order", "a"),
        ("r1", "list_orders", "b"),
        ("r2", "get_order", "a"),
        ("r1", "get_order", "a"),
        ("r1", "get_order", "b"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut record = evidence(
            "default",
            run,
            action,
            agent,
            base + index as i64 * 1000,
            b"{}",
        );
        if index == 2 {
            record.url = "https://other.example/x".into();
            record.status = Some(404);
        }
        records.push(key.seal(record));
    }
    recorder.insert_records(&records).await.expect("insert");
    recorder
        .insert_records(&[key.seal(evidence("acme", "r1", "get_order", "a", base, b"{}"))])
        .await
        .expect("insert");
    let ids = |reply: &crate::support::Reply| -> Vec<String> {
        reply.body["records"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["id"].as_str().map(String::from))
            .collect()
    };
    let id = |index: usize| records[index].record.id.to_string();
    let cases = [
        ("", vec![id(4), id(3), id(2), id(1), id(0)]),
        ("?run_id=r1", vec![id(4), id(3), id(1), id(0)]),
        ("?run_id=r1&action=get_order&agent_id=a", vec![id(3), id(0)]),
        ("?host=OTHER.example", vec![id(2)]),
        ("?status=404", vec![id(2)]),
        ("?run_id=none", vec![]),
    ];
    for (query, expected) in cases {
        let reply = app.get(&format!("/records{query}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{query}: {}", reply.text);
        assert_eq!(ids(&reply), expected, "{query}");
    }
    let first = app.get("/records").await;
    assert!(
        first.body["records"][0].get("response_body").is_none(),
        "listings carry no bodies"
    );
    assert_eq!(first.body["records"][0]["host"], "api.example.com");
    let mut seen = Vec::new();
    let mut page = app.get("/records?limit=2").await;
    loop {
        seen.extend(ids(&page));
        match page.body["next_cursor"].as_str() {
            Some(cursor) => page = app.get(&format!("/records?limit=2&cursor={cursor}")).await,
            None => break,
        }
    }
    assert_eq!(
        seen,
        [id(4), id(3), id(2), id(1), id(0)],
        "the cursor walks every record once"
    );
    assert_eq!(
        app.get("/records?limit=0").await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        app.get("/records?status=abc").await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        app.get("/records?cursor=zzz").await.status,
        StatusCode::BAD_REQUEST
    );
}

fn har(secret: &str) -> serde_json::Value {
    json!({"log": {"version": "1.2", "creator": {"name": "test", "version": "1"}, "entries": [{
        "startedDateTime": "2026-11-21T10:00:00.000Z", "time": 12,
        "request": {"method": "GET", "url": format!("https://api.example.com/v1/orders/7?api_key={secret}&expand=items"),
                    "headers": [{"name": "Authorization", "value": format!("Bearer {secret}")}, {"name": "Accept", "value": "application/json"}]},
        "response": {"status": 200, "headers": [{"name": "Set-Cookie", "value": format!("session={secret}")}],
                     "content": {"mimeType": "application/json", "text": "{\"order\": {\"status\": \"shipped\"}}"}},
        "_handoffrail": {"run_id": "run-h", "action": "get_order"}
    }]}})
}

async fn har_import_is_redacted_sealed_and_usable_as_evidence(backend: Backend) {
    let app = spawn_app(backend).await;
    let reply = app.post("/records", har("s3cr3t-value")).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(reply.body["imported"], 1);
    let id = reply.body["ids"][0]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let record = app.get(&format!("/records/{id}")).await;
    assert!(
        !record.text.contains("s3cr3t-value"),
        "secrets never stored: {}",
        record.text
    );
    assert_eq!(record.body["provenance"], "import");
    assert_eq!(record.body["signature_valid"], true);
    assert_eq!(
        record.body["url"],
        "https://api.example.com/v1/orders/7?api_key=[REDACTED]&expand=items"
    );
    assert_eq!(
        record.body["request_headers"][0],
        json!({"name": "Authorization", "value": "[REDACTED]"})
    );
    assert_eq!(record.body["response_headers"][0]["value"], "[REDACTED]");
    assert_eq!(
        record.body["trusted"], false,
        "no trusted endpoints configured"
    );

    let claim = json!({"action_name": "get_order", "verification_mode": "exact", "json_path": "$.order.status", "claimed_value": "shipped"});
    let mut by_id = claim.clone();
    by_id["record_id"] = json!(id);
    let result = app.post("/evaluations", json!({"claims": [by_id]})).await;
    assert_eq!(result.body["outcome"], "PASS", "{}", result.text);
    let by_run = app
        .post(
            "/evaluations",
            json!({"run_id": "run-h", "claims": [claim]}),
        )
        .await;
    assert_eq!(
        by_run.body["outcome"], "PASS",
        "found by the run and action of the HAR entry: {}",
        by_run.text
    );
}

async fn native_records_reimport_and_bad_imports_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = app.post("/records", har("x")).await;
    let id = first.body["ids"][0]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let exported = app.get(&format!("/records/{id}")).await.body;
    let again = app
        .post("/records", json!({"records": [exported.clone()]}))
        .await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.text);
    assert_eq!(
        (
            again.body["imported"].clone(),
            again.body["already_stored"].clone()
        ),
        (json!(0), json!([id])),
        "re-importing a record of ours keeps its id and leaves the stored one alone"
    );

    let acme = app.key("admin", Some("acme")).await;
    let other_tenant = app
        .send(
            reqwest::Method::POST,
            "/records",
            Some(&acme),
            Some(json!({"records": [exported.clone()]})),
        )
        .await;
    assert_eq!(
        other_tenant.status,
        StatusCode::CREATED,
        "{}",
        other_tenant.text
    );
    let copy_id = other_tenant.body["ids"][0]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_ne!(copy_id, id, "another tenant's copy gets its own id");
    let copy = app
        .send(
            reqwest::Method::GET,
            &format!("/records/{copy_id}"),
            Some(&acme),
            None,
        )
        .await
        .body;
    assert_eq!(
        (copy["response_body"].clone(), copy["url"].clone()),
        (exported["response_body"].clone(), exported["url"].clone())
    );
    assert_eq!(copy["tenant_id"], "acme");
    assert_eq!(copy["signature_valid"], true);

    let mut unsealed = exported.clone();
    if let Some(object) = unsealed.as_object_mut() {
        object.remove("seal");
    }
    let plain = app.post("/records", json!({"records": [unsealed]})).await;
    assert_eq!(plain.status, StatusCode::CREATED, "{}", plain.text);
    let plain_id = plain.body["ids"][0]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_ne!(plain_id, id, "without a seal it is new evidence");
    let plain = app.get(&format!("/records/{plain_id}")).await.body;
    assert_eq!(
        (
            plain["provenance"].clone(),
            plain["signature_valid"].clone()
        ),
        (json!("import"), json!(true))
    );

    // What a HAR import refuses, the records form refuses too: no method, a URL that is not absolute.
    let mut no_method = unsealed.clone();
    no_method["method"] = json!("");
    let mut relative = unsealed.clone();
    relative["url"] = json!("/v1/orders/7");
    for bad in [
        json!({"records": [no_method]}),
        json!({"records": [relative]}),
        json!({"log": {"entries": [{"request": {"method": "GET"}, "response": {}, "startedDateTime": "2026-11-21T10:00:00Z"}]}}),
        json!({"log": {}}),
        json!({"records": [{"method": "GET"}]}),
        json!({"something": "else"}),
    ] {
        let reply = app.post("/records", bad.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}: {}",
            reply.text
        );
    }
    let reader = app.key("reader", None).await;
    assert_eq!(
        app.send(
            reqwest::Method::POST,
            "/records",
            Some(&reader),
            Some(har("y"))
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get("/records").await.body["records"]
            .as_array()
            .map(Vec::len),
        Some(2),
        "only the two new records of this tenant"
    );
}

/// A record whose elapsed time a HAR import would refuse (here it ends long after it started) is exported with
/// HAR's "unknown" `time`, so the export imports again; the sealed record it embeds keeps the timings as stored.
async fn an_export_of_any_record_imports_again(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = app.post("/records", har("x")).await.body["ids"][0]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut record = app.get(&format!("/records/{id}")).await.body;
    if let Some(object) = record.as_object_mut() {
        object.remove("seal");
    }
    record["run_id"] = json!("run-long");
    record["timings"] = json!({"started_at": "1990-01-01T00:00:00Z", "first_byte_at": null,
                               "ended_at": "2026-01-01T00:00:00Z"});
    app.post("/records", json!({"records": [record]}))
        .await
        .succeeded();

    let exported = app.get("/records/export?format=har&run_id=run-long").await;
    assert_eq!(exported.status, StatusCode::OK, "{}", exported.text);
    let entry = &exported.body["log"]["entries"][0];
    assert_eq!(entry["time"], json!(-1.0));
    assert_eq!(
        entry["_handoffrail"]["record"]["timings"]["ended_at"],
        json!("2026-01-01T00:00:00.000000Z")
    );
    let again = app.post("/records", exported.body.clone()).await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.text);
    assert_eq!(
        again.body["already_stored"].as_array().map(Vec::len),
        Some(1)
    );
}

async fn exports_carry_verifiable_records(backend: Backend) {
    let app = spawn_app(backend).await;
    app.post("/records", har("a")).await.succeeded();
    let mut other_run = har("b");
    other_run["log"]["entries"][0]["_handoffrail"]["run_id"] = json!("run-other");
    app.post("/records", other_run).await.succeeded();
    let key = RecordKey::load_or_create(app.data_dir()).expect("key");

    let exported = app.get("/records/export?format=har&run_id=run-h").await;
    assert_eq!(exported.status, StatusCode::OK);
    let entries = exported.body["log"]["entries"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(entries.len(), 1, "only the run asked for");
    let carried: handoffrail::records::SealedRecord =
        serde_json::from_value(entries[0]["_handoffrail"]["record"].clone())
            .expect("sealed record");
    assert!(
        key.verify(&carried).is_valid(),
        "verifiable offline with the public key"
    );

    let lines = app
        .http
        .get(app.api("/records/export?format=jsonl"))
        .header("X-API-Key", &app.admin_key)
        .send()
        .await
        .expect("export");
    assert_eq!(lines.headers()["content-type"], "application/x-ndjson");
    let text = lines.text().await.expect("text");
    let records: Vec<handoffrail::records::SealedRecord> = text
        .lines()
        .map(|line| serde_json::from_str(line).expect("a sealed record per line"))
        .collect();
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|record| key.verify(record).is_valid()));
    assert!(
        records[0].record.timings.started_at <= records[1].record.timings.started_at,
        "oldest first"
    );
    assert_eq!(
        app.get("/records/export?format=csv").await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
}

/// Two servers sharing a record key (one data directory), each with its own database: evidence moves between
/// them with its ids, and a copy altered on the way is stored with its broken seal and caught.
async fn sealed_imports_keep_ids_and_a_tampered_copy_stays_caught(backend: Backend) {
    let dir = Arc::new(TempDir::new().expect("dir"));
    let first = spawn_app_with(
        backend,
        AppOptions {
            dir: Some(dir.clone()),
            ..Default::default()
        },
    )
    .await;
    let second_database = match backend {
        Backend::Sqlite => TestDatabase::file(&dir.path().join("second.db")),
        Backend::Postgres => fresh_database(backend, &dir).await,
    };
    let second = spawn_app_with(
        backend,
        AppOptions {
            dir: Some(dir.clone()),
            database_url: Some(second_database.url.clone()),
            ..Default::default()
        },
    )
    .await;
    let mut two = har("x");
    let mut customer = two["log"]["entries"][0].clone();
    customer["request"]["url"] = json!("https://api.example.com/v1/customers/3");
    customer["_handoffrail"]["action"] = json!("get_customer");
    two["log"]["entries"]
        .as_array_mut()
        .expect("entries")
        .push(customer);
    let imported = first.post("/records", two).await;
    assert_eq!(imported.status, StatusCode::CREATED, "{}", imported.text);
    let ids = imported.body["ids"].clone();
    let export = first.get("/records/export?format=har").await.body;

    let mut tampered = export.clone();
    let content = &mut tampered["log"]["entries"][0]["response"]["content"]["text"];
    let body = base64::engine::general_purpose::STANDARD
        .decode(content.as_str().unwrap_or_default())
        .expect("base64 body");
    let forged = String::from_utf8(body)
        .expect("utf-8")
        .replace("shipped", "refunded");
    *content = json!(base64::engine::general_purpose::STANDARD.encode(forged));

    let moved = second.post("/records", tampered.clone()).await;
    assert_eq!(moved.status, StatusCode::CREATED, "{}", moved.text);
    assert_eq!(moved.body["ids"], ids, "sealed records keep their ids");
    let order = ids[0].as_str().unwrap_or_default();
    let customer = ids[1].as_str().unwrap_or_default();
    let altered = second.get(&format!("/records/{order}")).await.body;
    assert_eq!(
        (
            altered["signature_valid"].clone(),
            altered["integrity"].clone()
        ),
        (json!(false), json!("digest_mismatch")),
        "{altered}"
    );
    let intact = second.get(&format!("/records/{customer}")).await.body;
    assert_eq!(intact["signature_valid"], true, "{intact}");

    let claims = |status: &str| {
        json!({"run_id": "run-h", "claims": [
            {"action_name": "get_order", "record_id": order, "verification_mode": "exact",
             "json_path": "$.order.status", "claimed_value": status},
            {"action_name": "get_customer", "record_id": customer, "verification_mode": "presence",
             "json_path": "$.order", "claimed_value": true}]})
    };
    let caught = second.post("/evaluations", claims("refunded")).await;
    assert_eq!(caught.status, StatusCode::CREATED, "{}", caught.text);
    let reasons: Vec<&str> = caught.body["per_claim"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|claim| claim["reason"].as_str())
        .collect();
    assert_eq!(reasons, ["evidence_tampered", "match"], "{}", caught.text);

    let again = first.post("/records", tampered).await;
    assert_eq!(again.body["already_stored"], ids);
    let genuine = first.post("/evaluations", claims("shipped")).await;
    assert_eq!(
        genuine.body["outcome"], "PASS",
        "a tampered copy never replaces the genuine record: {}",
        genuine.text
    );
    second.stop().await;
    first.stop().await;
}
