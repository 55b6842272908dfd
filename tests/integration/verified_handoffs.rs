//! Verified handoffs (docs/api.md, decision 12): a packet's claims are evaluated before it is stored, and a
//! verdict other than PASS follows the sender's policy.

use crate::evaluations::record;
use crate::live::Sse;
use crate::on_both_backends;
use crate::receiver::{Received, Receiver};
use crate::support::{packet_body, spawn_app, Backend, TestApp};
use crate::webhooks::register;
use reqwest::StatusCode;
use serde_json::{json, Value};

on_both_backends!(
    a_truthful_handoff_is_created_with_its_verdict,
    a_caught_handoff_is_held_for_a_human_who_accepts_or_sends_it_back,
    a_rejected_handoff_is_not_stored_but_its_evaluation_is,
    a_flagged_handoff_carries_its_verdict,
    errors_follow_their_own_policy,
    chains_and_batches_verify_too,
    malformed_claims_are_422,
    a_caught_handoff_is_announced_live_and_to_hooks,
    lists_and_search_filter_by_verdict,
    a_late_record_turns_a_reverification_to_pass,
    stats_and_metrics_count_verdicts_by_policy,
    no_one_sees_a_verified_packet_before_its_verdict,
    a_packet_and_its_evaluation_are_stored_together_or_not_at_all,
);

const ORDER: &[u8] = br#"{"order": {"id": 7, "status": "shipped", "total": 89.5}}"#;

/// A packet body whose sender claims the order's total is `total`, under `policy` for CAUGHT.
async fn handoff(app: &TestApp, total: &str, policy: &str) -> Value {
    let sealed = record(app, "default", "run-v", "get_order", ORDER).await;
    let mut body = packet_body("researcher", "writer", "Order 7 is ready to bill");
    body["verification"] = json!({"run_id": "run-v", "agent_id": "sales-01", "on_caught": policy, "claims": [
        {"action_name": "get_order", "verification_mode": "exact", "json_path": "$.order.status", "claimed_value": "shipped"},
        {"action_name": "get_order", "verification_mode": "field_extraction", "json_path": "$.order.total",
         "claimed_value": total, "record_id": sealed.record.id.to_string()},
    ]});
    body
}

async fn history(app: &TestApp, id: &str) -> Vec<(String, Value)> {
    app.get(&format!("/packets/{id}/history")).await.body["events"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|event| {
            (
                event["event_type"].as_str().unwrap_or_default().to_string(),
                event["details"].clone(),
            )
        })
        .collect()
}

async fn a_truthful_handoff_is_created_with_its_verdict(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app
        .post("/packets", handoff(&app, "89.50", "hold").await)
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let packet = created.body;
    assert_eq!(packet["status"], "created");
    let verification = &packet["verification"];
    assert_eq!(
        (
            verification["outcome"].clone(),
            verification["policy"].clone(),
            verification["counts"].clone()
        ),
        (
            json!("PASS"),
            Value::Null,
            json!({"pass": 2, "caught": 0, "error": 0})
        )
    );
    let id = packet["id"].as_str().unwrap_or_default();
    assert_eq!(
        app.get(&format!("/packets/{id}")).await.body["verification"],
        *verification
    );
    let evaluation = app
        .get(&format!(
            "/evaluations/{}",
            verification["evaluation_id"].as_str().unwrap_or_default()
        ))
        .await;
    assert_eq!(
        (evaluation.status, evaluation.body["outcome"].clone()),
        (StatusCode::OK, json!("PASS"))
    );
    assert_eq!(
        evaluation.body["packet_id"], packet["id"],
        "linked both ways"
    );
    let events = history(&app, id).await;
    assert_eq!(
        events
            .iter()
            .map(|(kind, _)| kind.as_str())
            .collect::<Vec<_>>(),
        ["created", "verification_passed"]
    );
    assert_eq!(events[1].1["evaluation_id"], verification["evaluation_id"]);

    let plain = app.create_packet(packet_body("a", "b", "no claims")).await;
    assert_eq!(
        plain["verification"],
        Value::Null,
        "a packet without claims says so"
    );
}

async fn a_caught_handoff_is_held_for_a_human_who_accepts_or_sends_it_back(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let created = app
            .post("/packets", handoff(&app, "99.00", "hold").await)
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
        let packet = created.body;
        assert_eq!(packet["status"], "awaiting_human");
        assert_eq!(
            (
                packet["verification"]["outcome"].clone(),
                packet["verification"]["policy"].clone()
            ),
            (json!("CAUGHT"), json!("hold"))
        );
        let hitl = &packet["hitl"];
        assert_eq!(hitl["options"], json!(["Accept anyway", "Send back"]));
        assert_eq!(hitl["required"], true);
        assert_eq!(
            hitl["reason"],
            "Verification CAUGHT: claim 1 (get_order) CAUGHT value_mismatch: claimed 99.00, record has 89.5 at $.order.total"
        );
        ids.push(packet["id"].as_str().unwrap_or_default().to_string());
    }
    let awaiting = app.get("/packets/awaiting").await.body;
    assert_eq!(awaiting["total"], 2, "{awaiting}");

    // No agent claims it before a human answers (decision 4).
    let claim = app
        .post(
            &format!("/packets/{}/claim", ids[0]),
            json!({"agent_id": "writer", "agent_name": "Writer"}),
        )
        .await;
    assert_eq!(claim.status, StatusCode::CONFLICT, "{}", claim.text);

    let accepted = app
        .post(
            &format!("/packets/{}/respond", ids[0]),
            json!({"response": "Accept anyway", "responded_by": "ann"}),
        )
        .await;
    assert_eq!(
        (accepted.status, accepted.body["status"].clone()),
        (StatusCode::OK, json!("claimed"))
    );

    let sent_back = app
        .post(
            &format!("/packets/{}/respond", ids[1]),
            json!({"response": "Send back", "responded_by": "ann"}),
        )
        .await;
    assert_eq!(
        (sent_back.status, sent_back.body["status"].clone()),
        (StatusCode::OK, json!("failed")),
        "{}",
        sent_back.text
    );
    let events = history(&app, &ids[1]).await;
    assert_eq!(
        events
            .iter()
            .map(|(kind, _)| kind.as_str())
            .collect::<Vec<_>>(),
        ["created", "verification_caught", "hitl_responded"]
    );
    assert_eq!(events[1].1["policy"], "hold");
    assert_eq!(events[2].1["transition_to"], "failed");
}

async fn a_rejected_handoff_is_not_stored_but_its_evaluation_is(backend: Backend) {
    let app = spawn_app(backend).await;
    let refused = app
        .post("/packets", handoff(&app, "99.00", "reject").await)
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.text
    );
    let verification = &refused.body["verification"];
    assert_eq!(
        (
            verification["outcome"].clone(),
            verification["policy"].clone()
        ),
        (json!("CAUGHT"), json!("reject"))
    );
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("policy is reject"),
        "{}",
        refused.text
    );
    assert_eq!(
        app.get("/packets").await.body["total"],
        0,
        "nothing is listed"
    );
    let evaluation = app
        .get(&format!(
            "/evaluations/{}",
            verification["evaluation_id"].as_str().unwrap_or_default()
        ))
        .await;
    assert_eq!(
        (evaluation.status, evaluation.body["outcome"].clone()),
        (StatusCode::OK, json!("CAUGHT"))
    );
    let never_stored = evaluation.body["packet_id"]
        .as_str()
        .expect("the packet's id");
    assert_eq!(
        app.get(&format!("/packets/{never_stored}")).await.status,
        StatusCode::NOT_FOUND,
        "the evaluation names the packet that was refused"
    );
}

async fn a_flagged_handoff_carries_its_verdict(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app
        .post("/packets", handoff(&app, "99.00", "flag").await)
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.body["status"], "created");
    assert_eq!(created.body["hitl"], Value::Null);
    assert_eq!(
        (
            created.body["verification"]["outcome"].clone(),
            created.body["verification"]["policy"].clone()
        ),
        (json!("CAUGHT"), json!("flag"))
    );
    let id = created.body["id"].as_str().unwrap_or_default();
    let claim = app
        .post(
            &format!("/packets/{id}/claim"),
            json!({"agent_id": "writer", "agent_name": "Writer"}),
        )
        .await;
    assert_eq!(
        claim.status,
        StatusCode::OK,
        "a flagged handoff can be claimed: {}",
        claim.text
    );
}

async fn errors_follow_their_own_policy(backend: Backend) {
    let app = spawn_app(backend).await;
    let claims =
        json!([{"action_name": "get_order", "verification_mode": "telepathy", "record_id": "x"}]);
    let mut body = packet_body("a", "b", "unverifiable");
    body["verification"] = json!({"claims": claims, "on_caught": "reject", "on_error": "flag"});
    let flagged = app.post("/packets", body.clone()).await;
    assert_eq!(flagged.status, StatusCode::CREATED, "{}", flagged.text);
    assert_eq!(
        (
            flagged.body["verification"]["outcome"].clone(),
            flagged.body["verification"]["policy"].clone()
        ),
        (json!("ERROR"), json!("flag"))
    );
    body["verification"]["on_error"] = json!("reject");
    assert_eq!(
        app.post("/packets", body.clone()).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    body["verification"] = json!({"claims": claims});
    let held = app.post("/packets", body).await;
    assert_eq!(
        held.body["status"], "awaiting_human",
        "ERROR is held by default: {}",
        held.text
    );
    let events = history(&app, held.body["id"].as_str().unwrap_or_default()).await;
    assert_eq!(events[1].0, "verification_error");
}

async fn chains_and_batches_verify_too(backend: Backend) {
    let app = spawn_app(backend).await;
    let parent = app.create_packet(packet_body("a", "b", "parent")).await;
    let parent_id = parent["id"].as_str().unwrap_or_default();
    let chained = app
        .post(
            &format!("/packets/{parent_id}/chain"),
            handoff(&app, "99.00", "hold").await,
        )
        .await;
    assert_eq!(chained.status, StatusCode::CREATED, "{}", chained.text);
    assert_eq!(
        (
            chained.body["status"].clone(),
            chained.body["verification"]["outcome"].clone()
        ),
        (json!("awaiting_human"), json!("CAUGHT"))
    );

    let batch = app
        .post(
            "/packets/batch",
            json!({"packets": [
                handoff(&app, "89.5", "hold").await,
                handoff(&app, "99.00", "reject").await,
                handoff(&app, "99.00", "flag").await,
            ]}),
        )
        .await;
    assert_eq!(batch.status, StatusCode::CREATED, "{}", batch.text);
    let outcomes: Vec<(Value, Value)> = batch.body["created"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|packet| {
            (
                packet["verification"]["outcome"].clone(),
                packet["status"].clone(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            (json!("PASS"), json!("created")),
            (json!("CAUGHT"), json!("created"))
        ]
    );
    assert_eq!(batch.body["errors"][0]["index"], 1, "{}", batch.text);
}

async fn malformed_claims_are_422(backend: Backend) {
    let app = spawn_app(backend).await;
    for verification in [
        json!({"claims": "get_order"}),
        json!({"claims": [], "on_caught": "hold"}),
        json!({"claims": [{"action_name": "a"}], "on_caught": "ignore"}),
    ] {
        let mut body = packet_body("a", "b", "bad claims");
        body["verification"] = verification.clone();
        let reply = app.post("/packets", body).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{verification}: {}",
            reply.text
        );
    }
    assert_eq!(app.get("/packets").await.body["total"], 0);
}

/// A CAUGHT handoff is announced as `packet.created`, then `packet.verification_caught` with the verdict, live
/// and to hooks that ask for it; a PASS handoff only as `packet.created`.
async fn a_caught_handoff_is_announced_live_and_to_hooks(backend: Backend) {
    let app = crate::webhooks::app(backend, "1s").await;
    let receiver = Receiver::start().await;
    register(
        &app,
        &receiver.url("/in"),
        json!(["packet.verification_caught"]),
    )
    .await;
    // The sender's channel: packet events only (evaluations announce themselves too).
    let mut live = Sse::open(
        &app.url(""),
        &format!("api_key={}&subscribe=agent:researcher", app.admin_key),
    )
    .await;
    assert_eq!(live.next_event().await.0, "connected");

    let passed = app
        .post("/packets", handoff(&app, "89.5", "hold").await)
        .await
        .body;
    let caught = app
        .post("/packets", handoff(&app, "99.00", "flag").await)
        .await
        .body;
    let mut frames = Vec::new();
    for _ in 0..3 {
        let (event, data) = live.next_event().await;
        frames.push((event, data["packet_id"].clone()));
        if frames.len() == 3 {
            assert_eq!(data["data"]["verification"]["outcome"], "CAUGHT", "{data}");
            assert_eq!(data["data"]["verification"]["policy"], "flag", "{data}");
        }
    }
    assert_eq!(
        frames,
        [
            ("packet.created".to_string(), passed["id"].clone()),
            ("packet.created".to_string(), caught["id"].clone()),
            (
                "packet.verification_caught".to_string(),
                caught["id"].clone()
            ),
        ]
    );

    let received = receiver.wait_for_count(1).await;
    let events: Vec<Value> = received.iter().map(Received::json).collect();
    assert_eq!(events[0]["event"], "packet.verification_caught");
    assert_eq!(events[0]["packet_id"], caught["id"]);
    assert_eq!(
        events[0]["details"]["verification"]["evaluation_id"],
        caught["verification"]["evaluation_id"]
    );
}

async fn lists_and_search_filter_by_verdict(backend: Backend) {
    let app = spawn_app(backend).await;
    let passed = app
        .post("/packets", handoff(&app, "89.5", "flag").await)
        .await
        .body;
    let caught = app
        .post("/packets", handoff(&app, "99.00", "flag").await)
        .await
        .body;
    let mut unverifiable = packet_body("a", "b", "Order 7 is ready to bill");
    unverifiable["verification"] = json!({"on_error": "flag", "claims": [{"action_name": "x", "verification_mode": "telepathy"}]});
    let errored = app.post("/packets", unverifiable).await.body;
    let plain = app
        .create_packet(packet_body("a", "b", "Order 7 is ready to bill"))
        .await;
    let ids = |list: &Value| -> Vec<Value> {
        list["packets"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|packet| packet["id"].clone())
            .collect()
    };
    for (filter, expected) in [
        ("PASS", &passed),
        ("CAUGHT", &caught),
        ("ERROR", &errored),
        ("none", &plain),
    ] {
        let listed = app.get(&format!("/packets?verification={filter}")).await;
        assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
        assert_eq!(
            (ids(&listed.body), listed.body["total"].clone()),
            (vec![expected["id"].clone()], json!(1)),
            "{filter}"
        );
        let found = app
            .get(&format!(
                "/packets/search?q=order+bill&verification={filter}"
            ))
            .await;
        assert_eq!(
            ids(&found.body),
            vec![expected["id"].clone()],
            "search {filter}: {}",
            found.text
        );
    }
    assert_eq!(ids(&app.get("/packets").await.body).len(), 4);
    let refused = app.get("/packets?verification=caught").await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.text
    );
}

/// Evidence that arrives after the handoff: the first verdict is CAUGHT `evidence_missing`; re-verification
/// finds the record and passes, and the history shows both verdicts.
async fn a_late_record_turns_a_reverification_to_pass(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut body = packet_body("researcher", "writer", "Order 7 shipped");
    body["verification"] = json!({"run_id": "run-late", "agent_id": "sales-01", "claims": [
        {"action_name": "get_order", "verification_mode": "exact", "json_path": "$.order.status",
         "claimed_value": "shipped", "api_key": "sk-live-secret"},
    ]});
    let created = app.post("/packets", body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.body["id"].as_str().unwrap_or_default().to_string();
    assert_eq!(
        created.body["verification"]["per_claim"][0]["reason"],
        "evidence_missing"
    );
    assert_eq!(created.body["status"], "awaiting_human");
    assert!(
        !created.text.contains("sk-live-secret"),
        "claims are kept without secrets"
    );

    record(&app, "default", "run-late", "get_order", ORDER).await;
    let again = app.post(&format!("/packets/{id}/verify"), json!({})).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    let verification = &again.body["verification"];
    assert_eq!(
        (
            verification["outcome"].clone(),
            verification["policy"].clone(),
            again.body["status"].clone()
        ),
        (json!("PASS"), json!("hold"), json!("awaiting_human")),
        "the new verdict; the policy applied and the status stay until a human answers"
    );
    assert_ne!(
        verification["evaluation_id"],
        created.body["verification"]["evaluation_id"]
    );
    let events = history(&app, &id).await;
    assert_eq!(
        events
            .iter()
            .map(|(kind, _)| kind.as_str())
            .collect::<Vec<_>>(),
        ["created", "verification_caught", "verification_passed"]
    );
    assert_eq!(events[2].1["reverified"], true);
    assert_eq!(events[2].1["previous_outcome"], "CAUGHT");

    let plain = app.create_packet(packet_body("a", "b", "no claims")).await;
    let refused = app
        .post(
            &format!(
                "/packets/{}/verify",
                plain["id"].as_str().unwrap_or_default()
            ),
            json!({}),
        )
        .await;
    assert_eq!(
        (refused.status, refused.body["detail"].clone()),
        (
            StatusCode::BAD_REQUEST,
            json!("Packet has no claims to verify")
        )
    );
    let reader = app.key("reader", None).await;
    let forbidden = app
        .send(
            reqwest::Method::POST,
            &format!("/packets/{id}/verify"),
            Some(&reader),
            Some(json!({})),
        )
        .await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
}

async fn stats_and_metrics_count_verdicts_by_policy(backend: Backend) {
    let app = spawn_app(backend).await;
    for (total, policy, status) in [
        ("89.5", "flag", StatusCode::CREATED),
        ("99.00", "hold", StatusCode::CREATED),
        ("99.00", "reject", StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        assert_eq!(
            app.post("/packets", handoff(&app, total, policy).await)
                .await
                .status,
            status
        );
    }
    let mut unverifiable = packet_body("a", "b", "unverifiable");
    unverifiable["verification"] = json!({"on_error": "flag", "claims": [{"action_name": "x", "verification_mode": "telepathy"}]});
    app.post("/packets", unverifiable).await.succeeded();
    app.create_packet(packet_body("a", "b", "plain")).await;

    let stats = app.get("/stats").await;
    assert_eq!(stats.status, StatusCode::OK, "{}", stats.text);
    assert_eq!(
        stats.body["packets_by_verification"],
        json!({"PASS": 1, "CAUGHT": 1, "ERROR": 1, "none": 1})
    );
    let metrics = app.metrics().await;
    for line in [
        r#"handoffrail_verified_handoffs_total{outcome="PASS",policy="none"} 1"#,
        r#"handoffrail_verified_handoffs_total{outcome="CAUGHT",policy="hold"} 1"#,
        r#"handoffrail_verified_handoffs_total{outcome="CAUGHT",policy="reject"} 1"#,
        r#"handoffrail_verified_handoffs_total{outcome="ERROR",policy="flag"} 1"#,
    ] {
        assert!(
            metrics.lines().any(|found| found == line),
            "{line} in:\n{metrics}"
        );
    }
}

/// Lists, searches and a live subscriber running while verified packets are created: every packet anyone sees
/// already carries its verdict, whose evaluation is stored.
async fn no_one_sees_a_verified_packet_before_its_verdict(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut live = Sse::open(
        &app.url(""),
        &format!("api_key={}&subscribe=agent:researcher", app.admin_key),
    )
    .await;
    assert_eq!(live.next_event().await.0, "connected");
    let mut bodies = Vec::new();
    for index in 0..12 {
        let total = if index % 2 == 0 { "89.5" } else { "99.00" };
        bodies.push(handoff(&app, total, "flag").await);
    }
    let creates =
        futures::future::join_all(bodies.into_iter().map(|body| app.post("/packets", body)));
    let watch = async {
        let mut seen = std::collections::BTreeMap::new();
        for _ in 0..40 {
            for path in [
                "/packets?limit=200",
                "/packets/search?q=order+bill&limit=200",
            ] {
                let listed = app.get(path).await.body;
                for packet in listed["packets"].as_array().into_iter().flatten() {
                    assert!(
                        packet["verification"]["evaluation_id"].is_string(),
                        "seen without a verdict: {packet}"
                    );
                    seen.insert(
                        packet["id"].to_string(),
                        packet["verification"]["evaluation_id"].clone(),
                    );
                }
            }
            tokio::task::yield_now().await;
        }
        seen
    };
    let (created, seen) = tokio::join!(creates, watch);
    assert!(created
        .iter()
        .all(|reply| reply.status == StatusCode::CREATED));
    for evaluation in seen.values() {
        let stored = app
            .get(&format!(
                "/evaluations/{}",
                evaluation.as_str().unwrap_or_default()
            ))
            .await;
        assert_eq!(
            stored.status,
            StatusCode::OK,
            "a listed packet's evaluation is stored"
        );
    }
    for _ in 0..12 {
        let (event, frame) = live.next_event().await;
        if event == "packet.created" {
            assert!(
                frame["data"]["verification"].is_null(),
                "the live envelope carries status and metadata"
            );
            let id = frame["packet_id"].as_str().unwrap_or_default();
            let packet = app.get(&format!("/packets/{id}")).await.body;
            assert!(
                packet["verification"]["evaluation_id"].is_string(),
                "{packet}"
            );
        }
    }
}

async fn a_packet_and_its_evaluation_are_stored_together_or_not_at_all(backend: Backend) {
    let app = spawn_app(backend).await;
    let missing_parent = uuid::Uuid::new_v4();
    let orphan = app
        .post(
            &format!("/packets/{missing_parent}/chain"),
            handoff(&app, "89.50", "hold").await,
        )
        .await;
    assert_eq!(orphan.status, StatusCode::NOT_FOUND, "{}", orphan.text);
    let listed = app.get("/evaluations?run_id=run-v").await;
    assert_eq!(
        listed.body["evaluations"],
        json!([]),
        "no evaluation names a packet that was never stored: {}",
        listed.text
    );

    let created = app
        .post("/packets", handoff(&app, "89.50", "hold").await)
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let listed = app.get("/evaluations?run_id=run-v").await;
    let evaluations = listed.body["evaluations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(evaluations.len(), 1, "{}", listed.text);
    assert_eq!(
        (
            evaluations[0]["id"].clone(),
            evaluations[0]["packet_id"].clone()
        ),
        (
            created.body["verification"]["evaluation_id"].clone(),
            created.body["id"].clone()
        )
    );
}
