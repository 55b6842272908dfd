//! `GET /audit` (docs/api.md §8.3): packet history as an audit log — newest first, exact filters, inclusive time
//! range, pages with a true total, tenant-scoped.

use crate::on_both_backends;
use crate::support::{packet_body, spawn_app, Backend};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

on_both_backends!(the_audit_log_filters_pages_and_stays_in_its_tenant);

fn actions(reply: &Value) -> Vec<String> {
    reply["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|entry| entry["action"].as_str().unwrap_or("").to_string())
        .collect()
}

async fn the_audit_log_filters_pages_and_stays_in_its_tenant(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = app
        .create_packet(packet_body("planner", "worker", "one"))
        .await;
    let first = first["id"].as_str().expect("id").to_string();
    let second = app
        .create_packet(packet_body("planner", "worker", "two"))
        .await;
    let second = second["id"].as_str().expect("id").to_string();
    app.post(
        &format!("/packets/{first}/claim"),
        json!({"agent_id": "w", "agent_name": "W"}),
    )
    .await
    .succeeded();
    app.patch(
        &format!("/packets/{first}"),
        json!({"status": "in_progress"}),
    )
    .await
    .succeeded();

    let all = app.get("/audit").await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.text);
    assert_eq!(
        actions(&all.body),
        ["in_progress", "claimed", "created", "created"]
    );
    assert_eq!(all.body["total"], 4);
    let newest = &all.body["entries"][0];
    assert_eq!(newest["resource"], "packet");
    assert_eq!(newest["packet_id"], first.as_str());
    assert_eq!(newest["actor"], "agent:w");
    assert_eq!(
        newest["details"],
        json!({"from_status": "claimed", "to_status": "in_progress"})
    );

    let claimed = app.get("/audit?action=claimed").await;
    assert_eq!(actions(&claimed.body), ["claimed"]);
    let by_worker = app.get("/audit?actor=agent:w").await;
    assert_eq!(by_worker.body["total"], 2);
    let of_second = app.get(&format!("/audit?packet_id={second}")).await;
    assert_eq!(actions(&of_second.body), ["created"]);

    // The range is inclusive at both ends.
    let at = all.body["entries"][1]["timestamp"]
        .as_str()
        .expect("timestamp")
        .to_string();
    let at_query: String = form_urlencoded::byte_serialize(at.as_bytes()).collect();
    let since = app.get(&format!("/audit?created_after={at_query}")).await;
    assert_eq!(actions(&since.body), ["in_progress", "claimed"]);
    let until = app.get(&format!("/audit?created_before={at_query}")).await;
    assert_eq!(actions(&until.body), ["claimed", "created", "created"]);

    let page = app.get("/audit?limit=1&offset=1").await;
    assert_eq!(actions(&page.body), ["claimed"]);
    assert_eq!(
        (
            page.body["total"].clone(),
            page.body["limit"].clone(),
            page.body["offset"].clone()
        ),
        (json!(4), json!(1), json!(1))
    );

    for bad in [
        "/audit?packet_id=nope",
        "/audit?created_after=yesterday",
        "/audit?limit=0",
    ] {
        assert_eq!(
            app.get(bad).await.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}"
        );
    }
    let reader = app.key("reader", None).await;
    let read = app.send(Method::GET, "/audit", Some(&reader), None).await;
    assert_eq!(read.body["total"], 4);
    let outsider = app.key("admin", Some("elsewhere")).await;
    let foreign = app.send(Method::GET, "/audit", Some(&outsider), None).await;
    assert_eq!(foreign.body["total"], 0);
    assert_eq!(foreign.body["entries"], json!([]));
}
