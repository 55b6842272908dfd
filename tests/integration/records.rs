//! The records API: one record with its verification status, and the public key.

use crate::on_both_backends;
use crate::store::{evidence, flip_stored_body_byte};
use crate::support::{spawn_app, Backend};
use base64::Engine;
use handoffrail::records::RecordKey;
use handoffrail::store::{self, StoreOptions};
use reqwest::StatusCode;
use serde_json::json;

on_both_backends!(
    a_stored_record_reads_back_verified_and_tampering_shows,
    the_public_key_is_the_servers_record_key,
    records_list_newest_first_with_filters_and_cursor,
    har_import_is_redacted_sealed_and_usable_as_evidence,
    native_records_reimport_and_bad_imports_are_refused,
    exports_carry_verifiable_records,
);

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
    let copy_id = again.body["ids"][0]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_ne!(copy_id, id, "an import gets a new id");
    let copy = app.get(&format!("/records/{copy_id}")).await.body;
    assert_eq!(
        (copy["response_body"].clone(), copy["url"].clone()),
        (exported["response_body"].clone(), exported["url"].clone())
    );
    assert_eq!(copy["signature_valid"], true);

    for bad in [
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
        "only the two good imports"
    );
}

async fn exports_carry_verifiable_records(backend: Backend) {
    let app = spawn_app(backend).await;
    app.post("/records", har("a")).await;
    let mut other_run = har("b");
    other_run["log"]["entries"][0]["_handoffrail"]["run_id"] = json!("run-other");
    app.post("/records", other_run).await;
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
