//! `POST /packets/batch`, `/batch/claim`, `/batch/complete` (docs/api.md §1.1, docs/api.md §2.7): partial success, per-item errors
//! in the reference's words, limits, roles, and claims that race.

use crate::on_both_backends;
use crate::support::{packet_body, spawn_app, Backend, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::HashSet;

on_both_backends!(
    batch_create_keeps_the_good_items_and_reports_the_bad,
    batch_sizes_are_limited,
    batch_claim_reports_each_refusal_in_the_reference_words,
    batch_complete_completes_claimed_and_in_progress_packets,
    racing_batch_claims_claim_each_packet_once,
    batch_routes_need_their_roles,
);

async fn created_ids(app: &TestApp, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for n in 0..count {
        let packet = app
            .create_packet(packet_body("planner", "worker", &format!("task {n}")))
            .await;
        ids.push(packet["id"].as_str().expect("id").to_string());
    }
    ids
}

fn ids_of(list: &Value) -> HashSet<String> {
    list.as_array()
        .expect("array")
        .iter()
        .map(|packet| packet["id"].as_str().expect("id").to_string())
        .collect()
}

async fn batch_create_keeps_the_good_items_and_reports_the_bad(backend: Backend) {
    let app = spawn_app(backend).await;
    let reply = app
        .post(
            "/packets/batch",
            json!({"packets": [
                packet_body("a", "b", "first"),
                {"metadata": {"source_agent": {"id": "a"}}, "context": {"summary": "no names"}},
                "not an object",
                packet_body("a", "b", "fourth"),
            ]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let created = reply.body["created"].as_array().expect("created");
    assert_eq!(created.len(), 2);
    assert_eq!(created[0]["context"]["summary"], "first");
    assert_eq!(created[1]["context"]["summary"], "fourth");
    let errors = reply.body["errors"].as_array().expect("errors");
    let indexes: Vec<_> = errors.iter().map(|e| e["index"].clone()).collect();
    assert_eq!(indexes, [json!(1), json!(2)]);
    for error in errors {
        assert!(
            error["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("422: ")),
            "{error}"
        );
    }
    // The good ones are real packets.
    for packet in created {
        let id = packet["id"].as_str().expect("id");
        assert_eq!(
            app.get(&format!("/packets/{id}")).await.status,
            StatusCode::OK
        );
    }

    // Every item failing is still 201, with nothing created.
    let reply = app
        .post("/packets/batch", json!({"packets": [{}, {"context": 5}]}))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.body["created"], json!([]));
    assert_eq!(reply.body["errors"].as_array().map(Vec::len), Some(2));
}

async fn batch_sizes_are_limited(backend: Backend) {
    let app = spawn_app(backend).await;
    let many: Vec<Value> = (0..51)
        .map(|n| packet_body("a", "b", &n.to_string()))
        .collect();
    let reply = app.post("/packets/batch", json!({ "packets": many })).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.body,
        json!({"detail": "Batch size exceeds maximum of 50"})
    );
    let listed = app.get("/packets").await;
    assert_eq!(
        listed.body["total"], 0,
        "an oversized batch creates nothing"
    );

    let fifty: Vec<Value> = (0..50)
        .map(|n| packet_body("a", "b", &n.to_string()))
        .collect();
    let reply = app
        .post("/packets/batch", json!({ "packets": fifty }))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.body["created"].as_array().map(Vec::len), Some(50));

    for body in [json!({"packets": []}), json!({}), json!({"packets": "x"})] {
        let reply = app.post("/packets/batch", body.clone()).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(reply.body["detail"].is_array(), "{}", reply.text);
    }
    let fifty_one: Vec<String> = (0..51).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    for path in ["/packets/batch/claim", "/packets/batch/complete"] {
        for ids in [json!([]), json!(fifty_one), json!(["not-a-uuid"])] {
            let reply = app
                .post(
                    path,
                    json!({"packet_ids": ids, "agent_id": "w", "agent_name": "W", "framework": null}),
                )
                .await;
            assert_eq!(
                reply.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{path} {ids}"
            );
        }
    }
    let reply = app
        .post(
            "/packets/batch/claim",
            json!({"packet_ids": [uuid::Uuid::new_v4()]}),
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "agent fields are required"
    );
}

async fn batch_claim_reports_each_refusal_in_the_reference_words(backend: Backend) {
    let app = spawn_app(backend).await;
    let ids = created_ids(&app, 4).await;
    let taken = app
        .post(
            &format!("/packets/{}/claim", ids[1]),
            json!({"agent_id": "early", "agent_name": "Early"}),
        )
        .await;
    assert_eq!(taken.status, StatusCode::OK);
    let progressed = &ids[2];
    app.post(
        &format!("/packets/{progressed}/claim"),
        json!({"agent_id": "early", "agent_name": "Early"}),
    )
    .await
    .succeeded();
    let moved = app
        .patch(
            &format!("/packets/{progressed}"),
            json!({"status": "in_progress"}),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK);
    assert_eq!(
        app.delete(&format!("/packets/{}", ids[3])).await.status,
        StatusCode::NO_CONTENT
    );
    let unknown = uuid::Uuid::new_v4().to_string();

    let reply = app
        .post(
            "/packets/batch/claim",
            json!({"packet_ids": [ids[0], ids[1], ids[2], ids[3], unknown],
                   "agent_id": "late", "agent_name": "Late", "framework": null}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let claimed = reply.body["claimed"].as_array().expect("claimed");
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0]["id"], ids[0].as_str());
    assert_eq!(claimed[0]["status"], "claimed");
    assert_eq!(claimed[0]["metadata"]["target_agent"]["id"], "late");
    assert_eq!(
        reply.body["errors"],
        json!([
            {"packet_id": ids[1], "error": "Already claimed by early"},
            {"packet_id": ids[2], "error": "Cannot claim from status 'in_progress'"},
            {"packet_id": ids[3], "error": format!("Packet {} has expired", ids[3])},
            {"packet_id": unknown, "error": format!("Packet {unknown} not found")},
        ])
    );
    let history = app.get(&format!("/packets/{}/history", ids[0])).await;
    assert!(
        history.body["events"]
            .as_array()
            .is_some_and(|events| events.iter().any(|e| e["event_type"] == "claimed")),
        "{}",
        history.text
    );
}

async fn batch_complete_completes_claimed_and_in_progress_packets(backend: Backend) {
    let app = spawn_app(backend).await;
    let ids = created_ids(&app, 3).await;
    for id in &ids[..2] {
        app.post(
            &format!("/packets/{id}/claim"),
            json!({"agent_id": "w", "agent_name": "W"}),
        )
        .await
        .succeeded();
    }
    app.patch(
        &format!("/packets/{}", ids[0]),
        json!({"status": "in_progress"}),
    )
    .await
    .succeeded();
    let other_tenant = uuid::Uuid::new_v4().to_string();
    let reply = app
        .post(
            "/packets/batch/complete",
            json!({"packet_ids": [ids[0], ids[1], ids[2], other_tenant]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    // In progress or (decision 13) claimed.
    assert_eq!(
        ids_of(&reply.body["completed"]),
        HashSet::from([ids[0].clone(), ids[1].clone()])
    );
    assert_eq!(reply.body["completed"][0]["status"], "completed");
    assert_eq!(reply.body["completed"][1]["status"], "completed");
    assert_eq!(
        reply.body["errors"],
        json!([
            {"packet_id": ids[2], "error": "Cannot complete from status 'created'"},
            {"packet_id": other_tenant, "error": format!("Packet {other_tenant} not found")},
        ])
    );
    let stored = app.get(&format!("/packets/{}", ids[2])).await;
    assert_eq!(
        stored.body["status"], "created",
        "a refused item is left as it was"
    );
    // The history names the batch, not the claiming agent (docs/api.md §8.2).
    let history = app.get(&format!("/packets/{}/history", ids[0])).await;
    let last = history.body["events"]
        .as_array()
        .and_then(|events| events.last())
        .cloned();
    let last = last.expect("an event");
    assert_eq!(last["event_type"], "completed");
    assert_eq!(last["actor"], "system:batch_complete");
    assert_eq!(last["details"]["from_status"], "in_progress");
    assert!(stored.body["metadata"]["completed_at"].is_null());
    let done = app.get(&format!("/packets/{}", ids[0])).await;
    assert!(done.body["metadata"]["completed_at"].is_string());
    // A packet already completed is refused, not completed again.
    let again = app
        .post("/packets/batch/complete", json!({"packet_ids": [ids[0]]}))
        .await;
    assert_eq!(
        again.body,
        json!({"completed": [], "errors": [{"packet_id": ids[0], "error": "Cannot complete from status 'completed'"}]})
    );
    let history_after = app.get(&format!("/packets/{}/history", ids[0])).await;
    assert_eq!(
        history_after.body["events"], history.body["events"],
        "nothing written"
    );
}

async fn racing_batch_claims_claim_each_packet_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let ids = created_ids(&app, 20).await;
    let mut racers = Vec::new();
    for racer in 0..4 {
        // Each racer asks for all twenty, in its own order.
        let mut order = ids.clone();
        order.rotate_left(racer * 5);
        let (http, url, key) = (
            app.http.clone(),
            app.api("/packets/batch/claim"),
            app.admin_key.clone(),
        );
        racers.push(tokio::spawn(async move {
            let reply = http
                .post(url)
                .header("X-API-Key", key)
                .json(
                    &json!({"packet_ids": order, "agent_id": format!("racer-{racer}"),
                              "agent_name": "Racer", "framework": null}),
                )
                .send()
                .await
                .expect("sent");
            assert_eq!(reply.status(), StatusCode::OK);
            reply.json::<Value>().await.expect("json")
        }));
    }
    let mut won = Vec::new();
    let mut refused = 0;
    for racer in racers {
        let reply = racer.await.expect("racer");
        won.extend(ids_of(&reply["claimed"]));
        refused += reply["errors"].as_array().map_or(0, Vec::len);
    }
    assert_eq!(won.len(), 20, "every packet claimed exactly once");
    assert_eq!(won.iter().collect::<HashSet<_>>().len(), 20);
    assert_eq!(refused, 60);
}

async fn batch_routes_need_their_roles(backend: Backend) {
    let app = spawn_app(backend).await;
    let ids = created_ids(&app, 1).await;
    let reader = app.key("reader", None).await;
    let agent = app.key("agent", None).await;
    let create = json!({"packets": [packet_body("a", "b", "x")]});
    let claim = json!({"packet_ids": ids, "agent_id": "w", "agent_name": "W", "framework": null});
    let complete = json!({"packet_ids": ids});
    let cases = [
        (&reader, "/packets/batch", &create, StatusCode::FORBIDDEN),
        (
            &reader,
            "/packets/batch/claim",
            &claim,
            StatusCode::FORBIDDEN,
        ),
        (
            &reader,
            "/packets/batch/complete",
            &complete,
            StatusCode::FORBIDDEN,
        ),
        (&agent, "/packets/batch", &create, StatusCode::FORBIDDEN),
        (
            &agent,
            "/packets/batch/complete",
            &complete,
            StatusCode::FORBIDDEN,
        ),
        (&agent, "/packets/batch/claim", &claim, StatusCode::OK),
    ];
    for (key, path, body, expected) in cases {
        let reply = app
            .send(Method::POST, path, Some(key), Some(body.clone()))
            .await;
        assert_eq!(reply.status, expected, "{path}: {}", reply.text);
    }
    let reply = app
        .send(Method::POST, "/packets/batch", None, Some(create.clone()))
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}
