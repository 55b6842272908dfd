//! `GET /packets/search` (docs/api.md decision 8): plain-text queries never fail, the most relevant packet comes first, an
//! exact summary match before anything else, `total` counts every hit, tenants see only their own packets.

use crate::on_both_backends;
use crate::support::{packet_body, spawn_app, Backend, TestApp};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

on_both_backends!(
    an_exact_summary_match_ranks_first_and_total_counts_every_hit,
    filters_pages_and_reindexing,
    the_query_must_have_two_characters,
    no_printable_query_makes_search_fail,
);

fn summaries(reply: &Value) -> Vec<String> {
    reply["packets"]
        .as_array()
        .expect("packets")
        .iter()
        .map(|packet| {
            packet["context"]["summary"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

fn search_path(q: &str, extra: &str) -> String {
    let q: String = form_urlencoded::byte_serialize(q.as_bytes()).collect();
    format!("/packets/search?q={q}{extra}")
}

async fn seed(app: &TestApp) {
    // The exact match is created first, so recency alone would put it last.
    app.create_packet(packet_body("a", "b", "Refund order 42"))
        .await;
    app.create_packet(packet_body(
        "a",
        "b",
        "Customer wants a refund for order 42 before shipping",
    ))
    .await;
    let mut in_context = packet_body("a", "b", "Billing question");
    in_context["context"]["conversation_state"] =
        json!([{"role": "user", "content": "the refund for order 42 is late"}]);
    app.create_packet(in_context).await;
    app.create_packet(packet_body("a", "b", "Unrelated upgrade"))
        .await;
}

async fn an_exact_summary_match_ranks_first_and_total_counts_every_hit(backend: Backend) {
    let app = spawn_app(backend).await;
    seed(&app).await;
    let other_tenant = app.key("admin", Some("other")).await;
    let foreign = app
        .send(
            Method::POST,
            "/packets",
            Some(&other_tenant),
            Some(packet_body("x", "y", "Refund order 42")),
        )
        .await;
    assert_eq!(foreign.status, StatusCode::CREATED);

    let reply = app.get(&search_path("Refund order 42", "")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(
        summaries(&reply.body),
        [
            "Refund order 42",
            "Customer wants a refund for order 42 before shipping",
            "Billing question",
        ]
    );
    assert_eq!(reply.body["total"], 3);
    assert_eq!(reply.body["next_cursor"], Value::Null);

    // Words are stemmed: "refunds" finds "refund".
    let reply = app.get(&search_path("refunds", "")).await;
    assert_eq!(reply.body["total"], 3);
    let reply = app.get(&search_path("upgrade", "")).await;
    assert_eq!(summaries(&reply.body), ["Unrelated upgrade"]);
    let reply = app.get(&search_path("nothing matches this", "")).await;
    assert_eq!(reply.body["total"], 0);
    assert_eq!(reply.body["packets"], json!([]));
}

async fn filters_pages_and_reindexing(backend: Backend) {
    let app = spawn_app(backend).await;
    seed(&app).await;
    let page = app.get(&search_path("refund", "&limit=1")).await;
    assert_eq!(summaries(&page.body).len(), 1);
    assert_ne!(
        summaries(&page.body),
        ["Billing question"],
        "summary hits outrank context hits"
    );
    assert_eq!(
        (page.body["total"].clone(), page.body["limit"].clone()),
        (json!(3), json!(1))
    );
    let past = app.get(&search_path("refund", "&offset=10")).await;
    assert_eq!(past.body["packets"], json!([]));
    assert_eq!(
        past.body["total"], 3,
        "total counts every hit, whatever the page"
    );

    let all = app.get(&search_path("refund", "")).await;
    let first = all.body["packets"][0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    app.post(
        &format!("/packets/{first}/claim"),
        json!({"agent_id": "w", "agent_name": "W"}),
    )
    .await
    .succeeded();
    let claimed = app.get(&search_path("refund", "&status=claimed")).await;
    assert_eq!(claimed.body["total"], 1);
    assert_eq!(claimed.body["packets"][0]["id"], first.as_str());
    let high = app.get(&search_path("refund", "&priority=high")).await;
    assert_eq!(high.body["total"], 0);

    // A context change is searchable at once; the old words are gone.
    let patched = app
        .patch(
            &format!("/packets/{first}"),
            json!({"context": {"summary": "Warehouse relabelling"}}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    let found = app.get(&search_path("relabelling", "")).await;
    assert_eq!(found.body["total"], 1);
    let refunds = app.get(&search_path("refund", "")).await;
    assert_eq!(refunds.body["total"], 2);
}

async fn the_query_must_have_two_characters(backend: Backend) {
    let app = spawn_app(backend).await;
    for path in [
        "/packets/search",
        "/packets/search?q=a",
        "/packets/search?q=ok&limit=0",
    ] {
        let reply = app.get(path).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{path}");
        assert!(reply.body["detail"].is_array(), "{}", reply.text);
    }
    assert_eq!(app.get("/packets/search?q=ok").await.status, StatusCode::OK);
    let reader = app.key("reader", None).await;
    let reply = app
        .send(Method::GET, "/packets/search?q=refund", Some(&reader), None)
        .await;
    assert_eq!(reply.status, StatusCode::OK);
}

async fn no_printable_query_makes_search_fail(backend: Backend) {
    let app = spawn_app(backend).await;
    seed(&app).await;
    // Query syntax of both engines, mixed into any printable text.
    let syntax = proptest::sample::select(vec![
        "\"", "'", "-", "*", ":", "(", ")", "&", "|", "!", "<->", "OR", "AND", "NOT", "NEAR", "^",
        "\\", "%", "summary:", "{", "}", "+", "~", "refund",
    ]);
    let strategy = proptest::collection::vec(
        proptest::prop_oneof![
            syntax.prop_map(String::from),
            "\\PC{1,6}",
            proptest::strategy::Just(" ".to_string())
        ],
        1..8,
    )
    .prop_map(|parts| parts.concat())
    .prop_filter("two characters", |q| q.chars().count() >= 2);
    let mut runner = TestRunner::deterministic();
    for _ in 0..150 {
        let q = strategy.new_tree(&mut runner).expect("query").current();
        let reply = app.get(&search_path(&q, "")).await;
        assert_eq!(reply.status, StatusCode::OK, "q={q:?}: {}", reply.text);
        let total = reply.body["total"].as_i64().expect("total");
        let listed = reply.body["packets"].as_array().map_or(0, Vec::len);
        assert_eq!(total, listed as i64, "q={q:?}");
    }
}
