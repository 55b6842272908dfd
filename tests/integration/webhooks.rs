//! Webhooks (docs/api.md §1.2, §6, decisions 1 and 2): registration and its checks, signed delivery of packet
//! events from the outbox, retries, dead letters, replay, 410 Gone and Retry-After.

use crate::on_both_backends;
use crate::receiver::{Answer, Received, Receiver};
use crate::support::{packet_body, spawn_app_with, AppOptions, Backend, TestApp};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use reqwest::StatusCode;
use ring::hmac;
use serde_json::{json, Value};
use std::time::Duration;

on_both_backends!(
    hooks_are_registered_listed_and_deactivated,
    internal_destinations_are_refused_at_registration,
    packet_events_arrive_signed_once_per_hook,
    a_refused_delivery_is_retried_until_it_arrives,
    failures_end_in_the_dead_letter_queue_and_replay_delivers,
    gone_deactivates_the_hook,
    retry_after_is_honoured,
    a_checkpoint_expires_on_time_with_its_webhook,
    evaluations_announce_what_they_caught,
);

const SECRET: &str = "a-webhook-secret-of-some-length";

/// An app whose webhooks may reach loopback, with a fast retry schedule.
pub(crate) async fn app(backend: Backend, schedule: &'static str) -> TestApp {
    spawn_app_with(
        backend,
        AppOptions {
            configure: Box::new(move |config| {
                config.webhooks.allowed_webhook_hosts = vec!["127.0.0.1".into()];
                config.webhooks.webhook_retry_schedule = schedule.parse().expect("schedule");
                config.webhooks.webhook_timeout = 2.0;
            }),
            ..AppOptions::default()
        },
    )
    .await
}

pub(crate) async fn register(app: &TestApp, url: &str, events: Value) -> Value {
    let reply = app
        .post(
            "/hooks",
            json!({"url": url, "events": events, "secret": SECRET}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    reply.body
}

async fn deliveries(app: &TestApp, hook: &Value) -> Vec<Value> {
    let reply = app
        .get(&format!(
            "/hooks/{}/deliveries",
            hook["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.body.as_array().expect("list").clone()
}

/// Waits until the hook's deliveries satisfy `done`.
async fn wait_for_deliveries(
    app: &TestApp,
    hook: &Value,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let list = deliveries(app, hook).await;
        if done(&list) {
            return list;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "deliveries never reached the expected state: {list:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Checks both signatures of a received delivery with the registered secret, computed here independently.
fn assert_signed(received: &Received) {
    let id = received.header("webhook-id");
    let timestamp = received.header("webhook-timestamp");
    let key = hmac::Key::new(hmac::HMAC_SHA256, SECRET.as_bytes());
    let mut signed = format!("{id}.{timestamp}.").into_bytes();
    signed.extend_from_slice(&received.body);
    let expected = format!("v1,{}", STANDARD.encode(hmac::sign(&key, &signed).as_ref()));
    assert_eq!(received.header("webhook-signature"), expected);
    let legacy: String = hmac::sign(&key, &received.body)
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    assert_eq!(received.header("x-hr-signature"), legacy);
    assert_eq!(received.json()["id"], id, "webhook-id is the event id");
    let sent_at: i64 = timestamp.parse().expect("unix seconds");
    assert!((chrono::Utc::now().timestamp() - sent_at).abs() < 60);
}

async fn hooks_are_registered_listed_and_deactivated(backend: Backend) {
    let app = app(backend, "1s").await;
    let hook = register(&app, "https://hooks.example.com/in", Value::Null).await;
    assert_eq!(
        hook["events"],
        json!([
            "packet.created",
            "packet.claimed",
            "packet.completed",
            "packet.failed"
        ])
    );
    assert_eq!(hook["active"], true);
    assert_eq!(hook["url"], "https://hooks.example.com/in");
    for field in ["id", "tenant_id", "created_at"] {
        assert!(hook[field].is_string(), "{field} in {hook}");
    }
    assert!(
        !hook.to_string().contains(SECRET),
        "the secret is never returned"
    );
    let second = register(
        &app,
        "https://hooks.example.com/two",
        json!(["packet.expired", "evaluation.caught"]),
    )
    .await;
    assert_eq!(
        second["events"],
        json!(["packet.expired", "evaluation.caught"])
    );

    let id = hook["id"].as_str().expect("id");
    assert_eq!(
        app.delete(&format!("/hooks/{id}")).await.status,
        StatusCode::NO_CONTENT
    );
    let again = app.delete(&format!("/hooks/{id}")).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text);
    let listed = app.get("/hooks").await;
    assert!(!listed.text.contains(SECRET));
    let listed = listed.body.as_array().expect("list").clone();
    assert_eq!(listed.len(), 2, "inactive hooks are listed too");
    assert_eq!(listed[0]["id"], hook["id"]);
    assert_eq!(listed[0]["active"], false);
    assert_eq!(listed[1]["active"], true);

    // Another tenant sees none of them and cannot touch them.
    let outsider = app.key("admin", Some("elsewhere")).await;
    let theirs = app
        .send(reqwest::Method::GET, "/hooks", Some(&outsider), None)
        .await;
    assert_eq!(theirs.body, json!([]));
    let second_id = second["id"].as_str().expect("id");
    for (method, path) in [
        (reqwest::Method::DELETE, format!("/hooks/{second_id}")),
        (
            reqwest::Method::GET,
            format!("/hooks/{second_id}/deliveries"),
        ),
    ] {
        let reply = app.send(method, &path, Some(&outsider), None).await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{path}: {}",
            reply.text
        );
    }
    let unknown = app
        .delete(&format!("/hooks/{}", uuid::Uuid::new_v4()))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    for (body, field) in [
        (json!({"url": "ftp://x.example/", "secret": SECRET}), "url"),
        (
            json!({"url": "https://x.example/", "secret": "short"}),
            "secret",
        ),
        (
            json!({"url": "https://x.example/", "secret": SECRET, "events": ["packet.updated"]}),
            "events",
        ),
        (
            json!({"url": "https://x.example/", "secret": SECRET, "events": ["nope"]}),
            "events",
        ),
    ] {
        let reply = app.post("/hooks", body.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            reply.text
        );
        assert_eq!(
            reply.body["detail"][0]["loc"],
            json!(["body", field]),
            "{}",
            reply.text
        );
    }
    let bad_status = app
        .get(&format!("/hooks/{second_id}/deliveries?status=lost"))
        .await;
    assert_eq!(bad_status.status, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn internal_destinations_are_refused_at_registration(backend: Backend) {
    // No named exceptions: loopback is as internal as anything else.
    let app = crate::support::spawn_app(backend).await;
    for (url, reason) in [
        (
            "http://127.0.0.1:9/hook",
            "IP address 127.0.0.1 is in a blocked range",
        ),
        (
            "http://localhost:9/hook",
            "Hostname 'localhost' is blocked (internal/metadata endpoint)",
        ),
        (
            "http://10.0.0.8/hook",
            "IP address 10.0.0.8 is in a blocked range",
        ),
        (
            "http://192.168.0.1/hook",
            "IP address 192.168.0.1 is in a blocked range",
        ),
        (
            "http://169.254.169.254/latest/meta-data",
            "IP address 169.254.169.254 is in a blocked range",
        ),
        (
            "http://metadata.google.internal/",
            "Hostname 'metadata.google.internal' is blocked (internal/metadata endpoint)",
        ),
        (
            "http://100.64.0.1/hook",
            "IP address 100.64.0.1 is in a blocked range",
        ),
        (
            "http://[::ffff:127.0.0.1]/hook",
            "IP address ::ffff:127.0.0.1 is in a blocked range",
        ),
        ("http://[::1]/hook", "IP address ::1 is in a blocked range"),
        (
            "http://0.0.0.0/hook",
            "IP address 0.0.0.0 is in a blocked range",
        ),
    ] {
        let reply = app
            .post("/hooks", json!({"url": url, "secret": SECRET}))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{url}: {}",
            reply.text
        );
        assert_eq!(reply.body["detail"][0]["msg"], reason, "{url}");
    }
    assert_eq!(app.get("/hooks").await.body, json!([]));
}

async fn packet_events_arrive_signed_once_per_hook(backend: Backend) {
    let app = app(backend, "1s").await;
    let receiver = Receiver::start().await;
    let hook = register(
        &app,
        &receiver.url("/events"),
        json!(["packet.created", "packet.claimed", "packet.completed"]),
    )
    .await;
    // A hook of another tenant asking for everything receives nothing of this tenant's.
    let outsider = app.key("admin", Some("elsewhere")).await;
    let other = Receiver::start().await;
    let theirs = app
        .send(
            reqwest::Method::POST,
            "/hooks",
            Some(&outsider),
            Some(json!({"url": other.url("/"), "secret": SECRET, "events": ["packet.created"]})),
        )
        .await;
    assert_eq!(theirs.status, StatusCode::CREATED, "{}", theirs.text);

    let packet = app
        .create_packet(packet_body("planner", "worker", "ship it"))
        .await;
    let id = packet["id"].as_str().expect("id");
    app.post(
        &format!("/packets/{id}/claim"),
        json!({"agent_id": "worker", "agent_name": "Worker"}),
    )
    .await
    .succeeded();
    app.patch(&format!("/packets/{id}"), json!({"status": "in_progress"}))
        .await
        .succeeded();
    app.patch(&format!("/packets/{id}"), json!({"status": "completed"}))
        .await
        .succeeded();

    // Arrival order is not promised (docs/api.md §6.2); the events' timestamps give their order.
    let mut received = receiver.wait_for_count(3).await;
    received.sort_by_key(|delivery| delivery.json()["timestamp"].as_str().map(String::from));
    let events: Vec<_> = received.iter().map(|r| r.json()["event"].clone()).collect();
    assert_eq!(
        events,
        vec!["packet.created", "packet.claimed", "packet.completed"]
    );
    for (delivery, status) in received.iter().zip(["created", "claimed", "completed"]) {
        assert_signed(delivery);
        let body = delivery.json();
        assert_eq!(body["packet_id"], id);
        assert_eq!(body["status"], status);
        assert_eq!(body["metadata"]["source_agent"]["id"], "planner");
        assert!(body["timestamp"].as_str().expect("time").ends_with('Z'));
        assert_eq!(
            delivery.header("x-hr-event"),
            body["event"].as_str().expect("event")
        );
        assert_eq!(delivery.header("content-type"), "application/json");
    }
    let ids: std::collections::HashSet<_> = received
        .iter()
        .map(|r| r.header("webhook-id").to_string())
        .collect();
    assert_eq!(ids.len(), 3, "each event has its own id");

    let listed = wait_for_deliveries(&app, &hook, |list| {
        list.len() == 3 && list.iter().all(|d| d["status"] == "delivered")
    })
    .await;
    for delivery in &listed {
        assert_eq!(delivery["attempts"], 1);
        assert_eq!(delivery["last_status_code"], 200);
        assert!(delivery["delivered_at"].is_string());
        let sent = received
            .iter()
            .find(|r| r.header("x-hr-delivery-id") == delivery["id"].as_str().expect("id"))
            .expect("every delivery listed was received");
        assert_eq!(
            sent.header("webhook-id"),
            delivery["event_id"].as_str().expect("event id")
        );
    }
    let only_delivered = app
        .get(&format!(
            "/hooks/{}/deliveries?status=delivered&limit=2",
            hook["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(only_delivered.body.as_array().expect("list").len(), 2);
    assert!(
        other.received().is_empty(),
        "the other tenant's hook got this tenant's events"
    );
}

async fn a_refused_delivery_is_retried_until_it_arrives(backend: Backend) {
    let app = app(backend, "100ms,100ms,100ms,100ms,100ms").await;
    let receiver = Receiver::start().await;
    receiver.queue([
        Answer::status(500),
        Answer::status(503),
        Answer::status(502),
    ]);
    let hook = register(&app, &receiver.url("/in"), json!(["packet.created"])).await;
    let packet = app
        .create_packet(packet_body("planner", "worker", "retry me"))
        .await;

    let received = receiver
        .wait_for(Duration::from_secs(20), |received| {
            received.iter().any(|r| r.status == StatusCode::OK)
        })
        .await;
    assert_eq!(
        received.len(),
        4,
        "three refusals, then the one that arrived"
    );
    let event_id = received[0].header("webhook-id").to_string();
    for attempt in &received {
        assert_eq!(
            attempt.header("webhook-id"),
            event_id,
            "the id is stable across retries"
        );
        assert_eq!(attempt.json()["packet_id"], packet["id"]);
        assert_signed(attempt);
    }
    let listed = wait_for_deliveries(&app, &hook, |list| {
        list.first().is_some_and(|d| d["status"] == "delivered")
    })
    .await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["attempts"], 4);
    assert_eq!(listed[0]["last_error"], Value::Null);
}

async fn failures_end_in_the_dead_letter_queue_and_replay_delivers(backend: Backend) {
    let app = app(backend, "50ms,50ms,50ms,50ms,50ms").await;
    let receiver = Receiver::start().await;
    receiver.answer_by_default(Answer::status(500));
    let hook = register(&app, &receiver.url("/in"), json!(["packet.created"])).await;
    app.create_packet(packet_body("planner", "worker", "doomed"))
        .await;

    let listed = wait_for_deliveries(&app, &hook, |list| {
        list.first().is_some_and(|d| d["status"] == "dead_letter")
    })
    .await;
    assert_eq!(
        listed[0]["attempts"], 6,
        "six failures, then the dead letter"
    );
    assert_eq!(listed[0]["last_status_code"], 500);
    assert!(listed[0]["last_error"]
        .as_str()
        .expect("error")
        .starts_with("HTTP 500"));
    assert_eq!(receiver.received().len(), 6);

    let dead = app.get("/hooks/dlq").await;
    let dead = dead.body.as_array().expect("list").clone();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["id"], listed[0]["id"]);
    assert_eq!(dead[0]["attempts"], 6);

    receiver.answer_by_default(Answer::status(204));
    let delivery_id = listed[0]["id"].as_str().expect("id");
    let replay = app
        .post(&format!("/hooks/dlq/{delivery_id}/replay"), json!({}))
        .await;
    assert_eq!(replay.status, StatusCode::OK, "{}", replay.text);
    assert_eq!(replay.body["replayed"], true);
    assert_eq!(replay.body["delivered"], true);
    let received = receiver.received();
    assert_eq!(received.len(), 7);
    assert_eq!(
        received[6].header("webhook-id"),
        received[0].header("webhook-id")
    );
    assert_eq!(app.get("/hooks/dlq").await.body, json!([]));
    let again = app
        .post(&format!("/hooks/dlq/{delivery_id}/replay"), json!({}))
        .await;
    assert_eq!(
        again.status,
        StatusCode::NOT_FOUND,
        "only a dead letter can be replayed"
    );

    // Retry-all (system administrators) puts every dead letter back in the outbox.
    receiver.answer_by_default(Answer::status(500));
    app.create_packet(packet_body("planner", "worker", "doomed too"))
        .await;
    wait_for_deliveries(&app, &hook, |list| {
        list.iter().any(|d| d["status"] == "dead_letter")
    })
    .await;
    let writer = app.key("admin", None).await;
    let forbidden = app
        .send(
            reqwest::Method::POST,
            "/hooks/dlq/retry-all",
            Some(&writer),
            Some(json!({})),
        )
        .await;
    assert_eq!(
        forbidden.status,
        StatusCode::FORBIDDEN,
        "{}",
        forbidden.text
    );
    receiver.answer_by_default(Answer::status(200));
    let retried = app.post("/hooks/dlq/retry-all", json!({})).await;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.text);
    assert_eq!(retried.body["retried"], 1);
    wait_for_deliveries(&app, &hook, |list| {
        list.iter().all(|d| d["status"] == "delivered")
    })
    .await;
}

async fn gone_deactivates_the_hook(backend: Backend) {
    let app = app(backend, "50ms").await;
    let receiver = Receiver::start().await;
    receiver.answer_by_default(Answer::status(410));
    let hook = register(&app, &receiver.url("/in"), json!(["packet.created"])).await;
    app.create_packet(packet_body("planner", "worker", "to nobody"))
        .await;
    let listed = wait_for_deliveries(&app, &hook, |list| {
        list.first().is_some_and(|d| d["status"] == "dead_letter")
    })
    .await;
    assert_eq!(listed[0]["attempts"], 1, "a 410 is not retried");
    assert_eq!(listed[0]["last_status_code"], 410);
    let hooks = app.get("/hooks").await;
    assert_eq!(hooks.body[0]["active"], false);
    // Events after the deactivation are not written for the hook at all.
    app.create_packet(packet_body("planner", "worker", "later"))
        .await;
    assert_eq!(deliveries(&app, &hook).await.len(), 1);
    let replay = app
        .post(
            &format!(
                "/hooks/dlq/{}/replay",
                listed[0]["id"].as_str().expect("id")
            ),
            json!({}),
        )
        .await;
    assert_eq!(
        replay.status,
        StatusCode::NOT_FOUND,
        "an inactive hook's dead letter is not replayed"
    );
}

async fn retry_after_is_honoured(backend: Backend) {
    let app = app(backend, "50ms,50ms").await;
    let receiver = Receiver::start().await;
    receiver.queue([Answer::status(429).with("retry-after", "2")]);
    let hook = register(&app, &receiver.url("/in"), json!(["packet.created"])).await;
    app.create_packet(packet_body("planner", "worker", "slow down"))
        .await;
    let waiting = wait_for_deliveries(&app, &hook, |list| {
        list.first().is_some_and(|d| d["status"] == "failed")
    })
    .await;
    let failed_at =
        chrono::DateTime::parse_from_rfc3339(waiting[0]["updated_at"].as_str().expect("time"))
            .expect("time");
    let next =
        chrono::DateTime::parse_from_rfc3339(waiting[0]["next_retry_at"].as_str().expect("time"))
            .expect("time");
    assert!(
        next - failed_at >= chrono::Duration::milliseconds(1990),
        "retried after {:?}, not after the 2 s the receiver asked for",
        next - failed_at
    );
    let received = receiver.wait_for_count(2).await;
    let first = received[0]
        .header("webhook-timestamp")
        .parse::<i64>()
        .expect("ts");
    let second = received[1]
        .header("webhook-timestamp")
        .parse::<i64>()
        .expect("ts");
    assert!(
        second - first >= 1,
        "the retry came {} s later",
        second - first
    );
}

async fn a_checkpoint_expires_on_time_with_its_webhook(backend: Backend) {
    // The expiry interval stays at its default (60 s): the deadline itself must wake the worker.
    let app = app(backend, "1s").await;
    let receiver = Receiver::start().await;
    register(&app, &receiver.url("/in"), json!(["packet.expired"])).await;
    let mut live = app
        .http
        .get(app.url(&format!(
            "/events?api_key={}&subscribe=status:expired",
            app.admin_key
        )))
        .send()
        .await
        .expect("live stream");
    assert_eq!(live.status(), StatusCode::OK);
    let mut body = packet_body("planner", "reviewer", "approve within two seconds");
    body["hitl"] = json!({"required": true, "reason": "approve", "timeout_seconds": 2});
    let created_at = std::time::Instant::now();
    let packet = app.create_packet(body).await;
    let id = packet["id"].as_str().expect("id");
    assert_eq!(packet["status"], "awaiting_human");

    let received = receiver.wait_for_count(1).await;
    let expired_after = created_at.elapsed();
    assert!(
        expired_after < Duration::from_secs(4),
        "expired {expired_after:?} after its creation, for a 2 s checkpoint"
    );
    let body = received[0].json();
    assert_eq!(body["event"], "packet.expired");
    assert_eq!(body["packet_id"], id);
    assert_eq!(body["status"], "expired");
    assert_signed(&received[0]);
    let stored = app.get(&format!("/packets/{id}")).await;
    assert_eq!(stored.body["status"], "expired");
    // The live event, to a subscriber of expired packets.
    let mut buffer = String::new();
    while !buffer.contains("event: packet.expired") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), live.chunk())
            .await
            .expect("the live event within 10 s")
            .expect("stream")
            .expect("open");
        buffer.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
    }
    assert!(
        buffer.contains(&format!("\"packet_id\":\"{id}\"")),
        "{buffer}"
    );
    let history = app.get(&format!("/packets/{id}/history")).await;
    let last = history.body["events"]
        .as_array()
        .and_then(|events| events.last())
        .cloned();
    assert_eq!(
        last.map(|event| (
            event["event_type"].clone(),
            event["details"]["reason"].clone()
        )),
        Some((json!("expired"), json!("hitl_timeout")))
    );
}

async fn evaluations_announce_what_they_caught(backend: Backend) {
    let app = app(backend, "1s").await;
    let receiver = Receiver::start().await;
    register(
        &app,
        &receiver.url("/in"),
        json!(["evaluation.completed", "evaluation.caught"]),
    )
    .await;
    let mut live = app
        .http
        .get(app.url(&format!("/events?api_key={}", app.admin_key)))
        .send()
        .await
        .expect("live stream");
    assert_eq!(live.status(), StatusCode::OK);
    let import = json!({"log": {"version": "1.2", "creator": {"name": "t", "version": "1"}, "entries": [{
        "startedDateTime": "2026-11-21T10:00:00.000Z", "time": 1,
        "request": {"method": "GET", "url": "https://api.example.com/v1/orders/7", "headers": []},
        "response": {"status": 200, "headers": [], "content": {"mimeType": "application/json", "text": "{\"total\": 99}"}},
        "_handoffrail": {"run_id": "run-e", "action": "get_order"}}]}});
    let imported = app.post("/records", import).await;
    assert_eq!(imported.status, StatusCode::CREATED, "{}", imported.text);
    let record = imported.body["ids"][0].clone();
    app.post(
        "/trusted-endpoints",
        json!({"url": "https://api.example.com/v1/orders/{id}"}),
    )
    .await
    .succeeded();
    let evaluation = app
        .post(
            "/evaluations",
            json!({"run_id": "run-e", "agent_id": "billing-bot", "claims": [
                {"action_name": "get_order", "verification_mode": "exact", "json_path": "$.total", "claimed_value": 99, "record_id": record},
                {"action_name": "get_order", "verification_mode": "exact", "json_path": "$.total", "claimed_value": 120, "record_id": record}
            ]}),
        )
        .await;
    assert_eq!(
        evaluation.status,
        StatusCode::CREATED,
        "{}",
        evaluation.text
    );
    assert_eq!(evaluation.body["outcome"], "CAUGHT");

    let received = receiver.wait_for_count(2).await;
    let mut events: Vec<Value> = received.iter().map(Received::json).collect();
    events.sort_by_key(|event| event["event"].as_str().unwrap_or_default().to_string());
    assert_eq!(events[0]["event"], "evaluation.caught");
    assert_eq!(events[1]["event"], "evaluation.completed");
    for (event, delivery) in events.iter().zip(&received) {
        assert_eq!(event["evaluation_id"], evaluation.body["id"]);
        assert_eq!(event["outcome"], "CAUGHT");
        assert_eq!(event["run_id"], "run-e");
        assert_eq!(event["agent_id"], "billing-bot");
        assert_eq!(event["counts"], json!({"pass": 1, "caught": 1, "error": 0}));
        assert_signed(delivery);
    }
    let caught = &events[0]["caught"];
    assert_eq!(events[0]["caught_total"], 1);
    assert_eq!(caught[0]["action_name"], "get_order");
    assert_eq!(caught[0]["json_path"], "$.total");
    assert_eq!(caught[0]["claimed"], 120);
    assert_eq!(caught[0]["actual"], 99);
    assert_eq!(caught[0]["reason"], "value_mismatch");

    // The live stream carries one event for it.
    let mut buffer = String::new();
    let frame = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(start) = buffer.find("event: evaluation.") {
                if let Some(end) = buffer[start..].find("\n\n") {
                    return buffer[start..start + end].to_string();
                }
            }
            let chunk = live.chunk().await.expect("stream").expect("open");
            buffer.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    })
    .await
    .expect("a live evaluation event");
    let data: Value = serde_json::from_str(
        frame
            .lines()
            .find_map(|line| line.strip_prefix("data: "))
            .expect("data"),
    )
    .expect("JSON");
    assert!(frame.starts_with("event: evaluation.caught"), "{frame}");
    assert_eq!(data["type"], "evaluation.caught");
    assert_eq!(data["evaluation_id"], evaluation.body["id"]);
    assert_eq!(data["data"]["caught"][0]["reason"], "value_mismatch");
}
