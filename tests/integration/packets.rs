//! The packet lifecycle over HTTP (docs/api.md §1.1, docs/api.md §2, docs/api.md §3, docs/api.md §8), on both backends.

use crate::on_both_backends;
use crate::support::{
    full_packet_body, packet_body, spawn_app, spawn_app_with, AppOptions, Backend,
};
use reqwest::StatusCode;
use serde_json::{json, Value};

on_both_backends!(
    create_returns_every_section_with_defaults_filled,
    hitl_packet_starts_awaiting_and_respond_hands_it_on,
    human_checkpoint_cannot_be_skipped,
    respond_outside_awaiting_human_is_refused,
    claim_overwrites_target_and_second_claim_conflicts,
    full_lifecycle_writes_history_in_order,
    a_claimed_packet_completes_without_in_progress,
    patch_merges_per_the_spec,
    delete_expires_softly_and_only_once,
    chain_links_child_to_parent_with_history,
    another_tenants_packet_is_not_found,
    list_filters_each_narrow_the_result,
    cursor_pagination_walks_every_packet_once,
    awaiting_lists_oldest_first,
    stale_packets_expire_after_the_ttl,
    unanswered_checkpoint_expires_after_its_timeout,
);

async fn create_returns_every_section_with_defaults_filled(backend: Backend) {
    let app = spawn_app(backend).await;
    let packet = app.create_packet(full_packet_body()).await;
    assert_eq!(packet["status"], "created");
    assert_eq!(packet["version"], "1.0.0");
    assert!(uuid::Uuid::parse_str(packet["id"].as_str().unwrap_or_default()).is_ok());
    assert_eq!(
        packet["metadata"]["created_at"], "2026-11-21T09:14:32.682573Z",
        "client time kept"
    );
    assert_eq!(packet["metadata"]["source_agent"]["version"], "1.2");
    assert_eq!(packet["metadata"]["claimed_at"], Value::Null);
    assert_eq!(
        packet["context"]["conversation_state"][0]["timestamp"],
        "2025-11-21T09:14:32.500000Z"
    );
    assert_eq!(
        packet["context"]["custom"]["exact"].to_string(),
        "9007199254740993",
        "big integers exact"
    );
    assert_eq!(
        packet["actions"]["failed"][0]["retries_remaining"], 2,
        "lax int coercion"
    );
    assert_eq!(packet["dependencies"][0]["description"], "");
    assert_eq!(packet["hitl"], Value::Null);
    assert!(packet["created_at"]
        .as_str()
        .unwrap_or_default()
        .ends_with('Z'));

    let fetched = app
        .get(&format!(
            "/packets/{}",
            packet["id"].as_str().unwrap_or_default()
        ))
        .await;
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(fetched.body, packet, "stored packet reads back identically");

    let minimal = app.create_packet(packet_body("a", "b", "")).await;
    assert_eq!(minimal["metadata"]["priority"], "normal");
    assert_eq!(minimal["metadata"]["tags"], json!([]));
    assert_eq!(
        minimal["actions"],
        json!({"pending": [], "completed": [], "failed": []})
    );
    assert_eq!(minimal["context"]["custom"], json!({}));
}

fn id(packet: &Value) -> String {
    packet["id"].as_str().expect("packet id").to_string()
}

fn with_hitl(mut body: Value, hitl: Value) -> Value {
    body["hitl"] = hitl;
    body
}

async fn hitl_packet_starts_awaiting_and_respond_hands_it_on(backend: Backend) {
    let app = spawn_app(backend).await;
    let packet = app
        .create_packet(with_hitl(
            packet_body("a", "b", "refund"),
            json!({"reason": "over limit", "question": "Approve?"}),
        ))
        .await;
    assert_eq!(packet["status"], "awaiting_human");
    assert_eq!(
        packet["hitl"]["required"], true,
        "required defaults to true"
    );
    let pid = id(&packet);

    let answered = app
        .post(
            &format!("/packets/{pid}/respond"),
            json!({"response": "approved", "responded_by": "ann", "notes": "ok"}),
        )
        .await;
    assert_eq!(answered.status, StatusCode::OK, "{}", answered.text);
    assert_eq!(answered.body["status"], "claimed");
    assert_eq!(answered.body["hitl"]["response"], "approved");
    assert_eq!(answered.body["hitl"]["responded_by"], "ann");
    assert_eq!(answered.body["hitl"]["notes"], "ok");
    assert!(answered.body["hitl"]["responded_at"].is_string());
    assert!(answered.body["metadata"]["claimed_at"].is_string());
    assert_eq!(
        answered.body["metadata"]["target_agent"]["id"], "b",
        "target unchanged by respond"
    );

    let history = app.get(&format!("/packets/{pid}/history")).await;
    let types: Vec<&str> = history.body["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|event| event["event_type"].as_str())
        .collect();
    assert_eq!(types, ["created", "hitl_responded"]);
    assert_eq!(history.body["events"][1]["actor"], "human:ann");

    let optional = app
        .create_packet(with_hitl(
            packet_body("a", "b", "fyi"),
            json!({"required": false, "reason": ""}),
        ))
        .await;
    assert_eq!(
        optional["status"], "created",
        "a checkpoint that is not required does not hold the packet"
    );
    let empty_reason = app
        .post(
            "/packets",
            with_hitl(packet_body("a", "b", "x"), json!({"reason": ""})),
        )
        .await;
    assert_eq!(empty_reason.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        empty_reason.body["detail"][0]["loc"],
        json!(["body", "hitl"])
    );
}

async fn human_checkpoint_cannot_be_skipped(backend: Backend) {
    let app = spawn_app(backend).await;
    let packet = app
        .create_packet(with_hitl(
            packet_body("a", "b", "x"),
            json!({"reason": "check"}),
        ))
        .await;
    let pid = id(&packet);
    let expected = json!({"detail": format!("Packet {pid} is awaiting a human response")});
    let claim = app
        .post(
            &format!("/packets/{pid}/claim"),
            json!({"agent_id": "c", "agent_name": "C"}),
        )
        .await;
    assert_eq!(
        (claim.status, &claim.body),
        (StatusCode::CONFLICT, &expected)
    );
    for status in ["claimed", "in_progress"] {
        let patch = app
            .patch(&format!("/packets/{pid}"), json!({"status": status}))
            .await;
        assert_eq!(
            (patch.status, &patch.body),
            (StatusCode::CONFLICT, &expected),
            "{status}"
        );
    }
    let still = app.get(&format!("/packets/{pid}")).await;
    assert_eq!(still.body["status"], "awaiting_human");
    let failed = app
        .patch(&format!("/packets/{pid}"), json!({"status": "failed"}))
        .await;
    assert_eq!(
        failed.status,
        StatusCode::OK,
        "failing a held packet is allowed"
    );
}

async fn respond_outside_awaiting_human_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let pid = id(&app.create_packet(packet_body("a", "b", "x")).await);
    let answer = json!({"response": "y", "responded_by": "ann"});
    let reply = app
        .post(&format!("/packets/{pid}/respond"), answer.clone())
        .await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert_eq!(
        reply.body["detail"],
        "Packet is in 'created' status, not 'awaiting_human'. Cannot respond."
    );

    // Held by a PATCH without any checkpoint: there is nothing to answer.
    let held = app
        .patch(
            &format!("/packets/{pid}"),
            json!({"status": "awaiting_human"}),
        )
        .await;
    assert_eq!(held.status, StatusCode::OK);
    let reply = app.post(&format!("/packets/{pid}/respond"), answer).await;
    assert_eq!(
        (reply.status, reply.body["detail"].as_str()),
        (
            StatusCode::BAD_REQUEST,
            Some("Packet has no HITL checkpoint")
        )
    );
}

async fn claim_overwrites_target_and_second_claim_conflicts(backend: Backend) {
    let app = spawn_app(backend).await;
    let pid = id(&app.create_packet(packet_body("a", "b", "x")).await);
    let claim = json!({"agent_id": "worker-7", "agent_name": "Worker", "framework": "crewai"});
    let won = app
        .post(&format!("/packets/{pid}/claim"), claim.clone())
        .await;
    assert_eq!(won.status, StatusCode::OK);
    assert_eq!(won.body["status"], "claimed");
    assert_eq!(
        won.body["metadata"]["target_agent"],
        json!({"id": "worker-7", "name": "Worker", "framework": "crewai"})
    );
    assert!(won.body["metadata"]["claimed_at"].is_string());

    let lost = app
        .post(
            &format!("/packets/{pid}/claim"),
            json!({"agent_id": "other", "agent_name": "O"}),
        )
        .await;
    assert_eq!(lost.status, StatusCode::CONFLICT);
    assert_eq!(
        lost.body,
        json!({"detail": {"message": format!("Packet {pid} is already claimed"),
                          "claimed_by": {"id": "worker-7", "name": "Worker", "framework": "crewai"}}})
    );

    app.patch(&format!("/packets/{pid}"), json!({"status": "in_progress"}))
        .await
        .succeeded();
    let from_progress = app.post(&format!("/packets/{pid}/claim"), claim).await;
    assert_eq!(from_progress.status, StatusCode::BAD_REQUEST);
    assert!(from_progress.body["detail"]
        .as_str()
        .unwrap_or_default()
        .starts_with("Cannot transition from 'in_progress' to 'claimed'"));
}

async fn full_lifecycle_writes_history_in_order(backend: Backend) {
    let app = spawn_app(backend).await;
    let pid = id(&app.create_packet(packet_body("src", "dst", "work")).await);
    app.post(
        &format!("/packets/{pid}/claim"),
        json!({"agent_id": "dst", "agent_name": "D"}),
    )
    .await
    .succeeded();
    let progress = app
        .patch(&format!("/packets/{pid}"), json!({"status": "in_progress"}))
        .await;
    assert_eq!(progress.status, StatusCode::OK);
    let done = app
        .patch(&format!("/packets/{pid}"), json!({"status": "completed"}))
        .await;
    assert_eq!(done.status, StatusCode::OK);
    assert_eq!(done.body["status"], "completed");
    assert!(done.body["metadata"]["completed_at"].is_string());

    let history = app.get(&format!("/packets/{pid}/history")).await;
    assert_eq!(history.body["packet_id"], pid);
    let events = history.body["events"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let summary: Vec<(String, String)> = events
        .iter()
        .map(|event| {
            (
                event["event_type"].as_str().unwrap_or_default().into(),
                event["actor"].as_str().unwrap_or_default().into(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("created", "agent:src"),
            ("claimed", "agent:dst"),
            ("in_progress", "agent:dst"),
            ("completed", "agent:dst")
        ]
        .map(|(kind, actor)| (kind.to_string(), actor.to_string()))
    );
    assert_eq!(
        events[3]["details"],
        json!({"from_status": "in_progress", "to_status": "completed"})
    );

    let missing = app
        .get(&format!("/packets/{}/history", uuid::Uuid::new_v4()))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

/// Decision 13: the documented flow claims and then completes; the reference refused it.
async fn a_claimed_packet_completes_without_in_progress(backend: Backend) {
    let app = spawn_app(backend).await;
    let pid = id(&app.create_packet(packet_body("a", "b", "x")).await);
    app.post(
        &format!("/packets/{pid}/claim"),
        json!({"agent_id": "b", "agent_name": "B"}),
    )
    .await
    .succeeded();
    let refused = app
        .patch(&format!("/packets/{pid}"), json!({"status": "created"}))
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        refused.body["detail"],
        "Cannot transition from 'claimed' to 'created'. Allowed transitions from 'claimed': ['in_progress', 'completed', 'awaiting_human', 'failed', 'expired']"
    );
    let reply = app
        .patch(&format!("/packets/{pid}"), json!({"status": "completed"}))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["status"], "completed");
    assert!(reply.body["metadata"]["completed_at"].is_string());
    let history = app.get(&format!("/packets/{pid}/history")).await;
    let kinds: Vec<&str> = history.body["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|event| event["event_type"].as_str())
        .collect();
    assert_eq!(kinds, ["created", "claimed", "completed"]);
    let created_to_progress = app.create_packet(packet_body("a", "b", "y")).await;
    let reply = app
        .patch(
            &format!("/packets/{}", id(&created_to_progress)),
            json!({"status": "in_progress"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
}

async fn patch_merges_per_the_spec(backend: Backend) {
    let app = spawn_app(backend).await;
    let packet = app.create_packet(full_packet_body()).await;
    let pid = id(&packet);
    let patch = json!({
        "decisions": [{"id": "d2", "decision": "Escalate", "rationale": "r"}, {"id": "d1", "decision": "Changed", "rationale": "x"}],
        "actions": {"pending": [{"id": "n1", "description": "New", "assignee": "z"}]},
        "context": {"summary": "replaced"},
        "hitl": {"reason": "later"},
        "metadata": {"priority": "low"},
        "status": "created"
    });
    let reply = app.patch(&format!("/packets/{pid}"), patch).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let body = &reply.body;
    let decisions: Vec<&str> = body["decisions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["decision"].as_str())
        .collect();
    assert_eq!(
        decisions,
        ["Changed", "Escalate"],
        "upsert by id, order kept, new appended"
    );
    assert_eq!(
        body["actions"]["completed"],
        json!([]),
        "omitted action lists are wiped"
    );
    assert_eq!(body["actions"]["pending"][0]["id"], "n1");
    assert_eq!(
        body["context"],
        json!({"summary": "replaced", "conversation_state": [], "artifacts": [], "custom": {}})
    );
    assert_eq!(body["hitl"]["reason"], "later");
    assert_eq!(
        body["status"], "created",
        "adding a checkpoint does not change status"
    );
    assert_eq!(
        body["metadata"]["priority"], "high",
        "metadata is not patchable"
    );
    assert_ne!(body["updated_at"], packet["updated_at"]);

    let empty = app.patch(&format!("/packets/{pid}"), json!({})).await;
    assert_eq!(empty.status, StatusCode::OK);
    assert_eq!(empty.body["decisions"], body["decisions"]);
    let history = app.get(&format!("/packets/{pid}/history")).await;
    assert_eq!(
        history.body["events"].as_array().map(Vec::len),
        Some(1),
        "no event for non-status patches"
    );
}

async fn delete_expires_softly_and_only_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let pid = id(&app.create_packet(packet_body("a", "b", "x")).await);
    let deleted = app.delete(&format!("/packets/{pid}")).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert!(deleted.text.is_empty());
    let after = app.get(&format!("/packets/{pid}")).await;
    assert_eq!(after.body["status"], "expired");
    let again = app.delete(&format!("/packets/{pid}")).await;
    assert_eq!(
        (again.status, again.body["detail"].clone()),
        (
            StatusCode::CONFLICT,
            json!(format!("Packet {pid} is already expired"))
        )
    );
    let claim = app
        .post(
            &format!("/packets/{pid}/claim"),
            json!({"agent_id": "c", "agent_name": "C"}),
        )
        .await;
    assert_eq!(
        (claim.status, claim.body["detail"].clone()),
        (StatusCode::GONE, json!(format!("Packet {pid} has expired")))
    );
    let history = app.get(&format!("/packets/{pid}/history")).await;
    assert_eq!(history.body["events"][1]["actor"], "system:soft_delete");
    assert_eq!(
        history.body["events"][1]["details"],
        json!({"previous_status": "created", "reason": "soft_delete"})
    );
    let unknown = app
        .delete(&format!("/packets/{}", uuid::Uuid::new_v4()))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

async fn chain_links_child_to_parent_with_history(backend: Backend) {
    let app = spawn_app(backend).await;
    let parent = id(&app.create_packet(packet_body("a", "b", "first")).await);
    let mut body = packet_body("b", "c", "second");
    body["parent_packet_id"] = json!(uuid::Uuid::new_v4());
    let child = app
        .post(&format!("/packets/{parent}/chain"), body.clone())
        .await;
    assert_eq!(child.status, StatusCode::CREATED, "{}", child.text);
    assert_eq!(
        child.body["parent_packet_id"], parent,
        "the path names the parent"
    );
    let child_id = id(&child.body);
    let child_history = app.get(&format!("/packets/{child_id}/history")).await;
    assert_eq!(
        child_history.body["events"][0]["details"],
        json!({"parent_packet_id": parent, "chain": true})
    );
    let parent_history = app.get(&format!("/packets/{parent}/history")).await;
    assert_eq!(parent_history.body["events"][1]["event_type"], "chained");
    assert_eq!(
        parent_history.body["events"][1]["details"],
        json!({"child_packet_id": child_id})
    );
    assert_eq!(parent_history.body["events"][1]["actor"], "agent:b");
    let orphan = app
        .post(&format!("/packets/{}/chain", uuid::Uuid::new_v4()), body)
        .await;
    assert_eq!(orphan.status, StatusCode::NOT_FOUND);
}

async fn another_tenants_packet_is_not_found(backend: Backend) {
    let app = spawn_app(backend).await;
    let other = app.key("admin", Some("acme")).await;
    let pid = id(&app.create_packet(packet_body("a", "b", "mine")).await);
    let expected = json!({"detail": format!("Packet {pid} not found")});
    for (method, path, body) in [
        (reqwest::Method::GET, format!("/packets/{pid}"), None),
        (
            reqwest::Method::GET,
            format!("/packets/{pid}/history"),
            None,
        ),
        (
            reqwest::Method::PATCH,
            format!("/packets/{pid}"),
            Some(json!({"status": "failed"})),
        ),
        (reqwest::Method::DELETE, format!("/packets/{pid}"), None),
        (
            reqwest::Method::POST,
            format!("/packets/{pid}/claim"),
            Some(json!({"agent_id": "x", "agent_name": "X"})),
        ),
        (
            reqwest::Method::POST,
            format!("/packets/{pid}/respond"),
            Some(json!({"response": "x", "responded_by": "y"})),
        ),
        (
            reqwest::Method::POST,
            format!("/packets/{pid}/chain"),
            Some(packet_body("a", "b", "c")),
        ),
    ] {
        let reply = app.send(method.clone(), &path, Some(&other), body).await;
        assert_eq!(
            (reply.status, &reply.body),
            (StatusCode::NOT_FOUND, &expected),
            "{method} {path}"
        );
    }
    let listed = app
        .send(reqwest::Method::GET, "/packets", Some(&other), None)
        .await;
    assert_eq!(listed.body["total"], 0);
    let mine = app.get(&format!("/packets/{pid}")).await;
    assert_eq!(
        mine.body["status"], "created",
        "nothing the other tenant tried changed it"
    );
}

async fn list_filters_each_narrow_the_result(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut one = packet_body("alpha", "beta", "one");
    one["metadata"]["tags"] = json!(["red", "blue"]);
    one["metadata"]["priority"] = json!("high");
    let one = id(&app.create_packet(one).await);
    let mut two = packet_body("alpha", "gamma", "two");
    two["metadata"]["tags"] = json!(["red"]);
    let two = id(&app.create_packet(two).await);
    let three = id(&app
        .create_packet(packet_body("delta", "beta", "three"))
        .await);
    app.post(
        &format!("/packets/{three}/claim"),
        json!({"agent_id": "omega", "agent_name": "O"}),
    )
    .await
    .succeeded();

    let ids = |reply: &crate::support::Reply| -> Vec<String> {
        reply.body["packets"]
            .as_array()
            .into_iter()
            .flatten()
            .map(id)
            .collect()
    };
    let cases: [(&str, Vec<&String>); 11] = [
        ("", vec![&three, &two, &one]),
        ("status=created", vec![&two, &one]),
        ("status=claimed,%20created", vec![&three, &two, &one]),
        ("status=nonsense", vec![]),
        ("source_agent=alpha", vec![&two, &one]),
        ("target_agent=beta", vec![&one]),
        ("target_agent=omega", vec![&three]),
        ("tags=red,blue", vec![&one]),
        // A repeated list parameter means its values together, as the SDK's `list_packets(tags=[...])` sends.
        ("tags=red&tags=blue", vec![&one]),
        (
            "status=claimed&priority=normal&status=created",
            vec![&three, &two],
        ),
        ("priority=high", vec![&one]),
    ];
    for (query, expected) in cases {
        let reply = app.get(&format!("/packets?{query}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{query}: {}", reply.text);
        let expected: Vec<String> = expected.into_iter().cloned().collect();
        assert_eq!(ids(&reply), expected, "{query}");
        assert_eq!(reply.body["total"], expected.len(), "{query}");
        assert_eq!(reply.body["limit"], 50);
        assert_eq!(reply.body["offset"], 0);
    }
    let repeated = app.get("/packets?priority=high&priority=low").await;
    assert_eq!(
        (repeated.status, repeated.body["detail"][0]["loc"].clone()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!(["query", "priority"])
        ),
        "a parameter that is not a list may not repeat: {}",
        repeated.text
    );
    let all = app.get("/packets").await;
    let middle = all.body["packets"][1]["created_at"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let after = app
        .get(&format!(
            "/packets?created_after={}",
            middle.replace(':', "%3A")
        ))
        .await;
    assert_eq!(ids(&after), [three.clone(), two.clone()]);
    let before = app
        .get(&format!(
            "/packets?created_before={}",
            middle.replace(':', "%3A")
        ))
        .await;
    assert_eq!(ids(&before), [two.clone(), one.clone()]);
    let offset = app.get("/packets?limit=1&offset=1").await;
    assert_eq!(
        (ids(&offset), offset.body["total"].clone()),
        (vec![two.clone()], json!(3))
    );
}

async fn cursor_pagination_walks_every_packet_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut created = Vec::new();
    for index in 0..7 {
        created.push(id(&app
            .create_packet(packet_body("a", "b", &format!("p{index}")))
            .await));
    }
    let mut seen = Vec::new();
    let mut totals = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = match &cursor {
            Some(cursor) => format!("/packets?limit=3&cursor={cursor}"),
            None => "/packets?limit=3".to_string(),
        };
        let page = app.get(&query).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        totals.push(page.body["total"].as_i64().unwrap_or(-1));
        seen.extend(
            page.body["packets"]
                .as_array()
                .into_iter()
                .flatten()
                .map(id),
        );
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    created.reverse();
    assert_eq!(seen, created, "newest first, each exactly once");
    assert_eq!(totals, [7, 4, 1], "total counts matches from the cursor on");
    let bad = app.get("/packets?cursor=not-a-cursor").await;
    assert_eq!(
        (bad.status, bad.body.clone()),
        (StatusCode::BAD_REQUEST, json!({"detail": "Invalid cursor"}))
    );
}

async fn awaiting_lists_oldest_first(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = id(&app
        .create_packet(with_hitl(
            packet_body("a", "b", "1"),
            json!({"reason": "r"}),
        ))
        .await);
    app.create_packet(packet_body("a", "b", "not held")).await;
    let second = id(&app
        .create_packet(with_hitl(
            packet_body("a", "b", "2"),
            json!({"reason": "r"}),
        ))
        .await);
    let reply = app.get("/packets/awaiting").await;
    assert_eq!(reply.status, StatusCode::OK);
    let ids: Vec<String> = reply.body["packets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(id)
        .collect();
    assert_eq!(ids, [first.clone(), second]);
    assert_eq!(reply.body["total"], 2);
    assert_eq!(reply.body["next_cursor"], Value::Null);
    let paged = app.get("/packets/awaiting?limit=1&offset=1").await;
    assert_eq!(paged.body["packets"].as_array().map(Vec::len), Some(1));
    assert_eq!(paged.body["total"], 2);
}

async fn stale_packets_expire_after_the_ttl(backend: Backend) {
    let app = spawn_app_with(
        backend,
        AppOptions {
            configure: Box::new(|config| {
                config.packet_ttl_seconds = 1;
                config.expiry_interval_seconds = 1;
            }),
            ..Default::default()
        },
    )
    .await;
    let live = id(&app.create_packet(packet_body("a", "b", "x")).await);
    let done = id(&app.create_packet(packet_body("a", "b", "y")).await);
    app.post(
        &format!("/packets/{done}/claim"),
        json!({"agent_id": "b", "agent_name": "B"}),
    )
    .await
    .succeeded();
    app.patch(
        &format!("/packets/{done}"),
        json!({"status": "in_progress"}),
    )
    .await
    .succeeded();
    app.patch(&format!("/packets/{done}"), json!({"status": "completed"}))
        .await
        .succeeded();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let packet = app.get(&format!("/packets/{live}")).await;
        if packet.body["status"] == "expired" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "packet did not expire"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let history = app.get(&format!("/packets/{live}/history")).await;
    assert_eq!(history.body["events"][1]["actor"], "system:expiry_task");
    assert_eq!(
        history.body["events"][1]["details"]["reason"],
        "ttl_exceeded"
    );
    let finished = app.get(&format!("/packets/{done}")).await;
    assert_eq!(
        finished.body["status"], "completed",
        "completed packets do not expire"
    );
}

async fn unanswered_checkpoint_expires_after_its_timeout(backend: Backend) {
    let app = spawn_app_with(
        backend,
        AppOptions {
            configure: Box::new(|config| config.expiry_interval_seconds = 1),
            ..Default::default()
        },
    )
    .await;
    let timed = json!({"reason": "approve", "timeout_seconds": 1});
    let unanswered = id(&app
        .create_packet(with_hitl(packet_body("a", "b", "x"), timed.clone()))
        .await);
    let answered = id(&app
        .create_packet(with_hitl(packet_body("a", "b", "y"), timed))
        .await);
    let patient = id(&app
        .create_packet(with_hitl(
            packet_body("a", "b", "z"),
            json!({"reason": "no rush"}),
        ))
        .await);
    let reply = app
        .post(
            &format!("/packets/{answered}/respond"),
            json!({"response": "ok", "responded_by": "ann"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while app.get(&format!("/packets/{unanswered}")).await.body["status"] != "expired" {
        assert!(
            std::time::Instant::now() < deadline,
            "unanswered checkpoint did not expire"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let history = app.get(&format!("/packets/{unanswered}/history")).await;
    assert_eq!(
        history.body["events"][1]["details"],
        json!({"previous_status": "awaiting_human", "reason": "hitl_timeout"})
    );
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert_eq!(
        app.get(&format!("/packets/{answered}")).await.body["status"],
        "claimed",
        "an answered checkpoint is done"
    );
    assert_eq!(
        app.get(&format!("/packets/{patient}")).await.body["status"],
        "awaiting_human",
        "no timeout, no expiry"
    );
}
