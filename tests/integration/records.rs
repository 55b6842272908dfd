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
