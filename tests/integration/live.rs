//! Live events (docs/api.md §7, decision 3): `/events` (SSE) and `/ws` (WebSocket) need a valid key, carry
//! their tenant's packet events once, filtered by channels, with heartbeats and per-tier caps; on PostgreSQL
//! an event caused on one instance reaches subscribers of another.

use crate::on_both_backends;
use crate::support::{
    fresh_database, init, notice_postgres_skipped, packet_body, postgres_url, spawn_app,
    spawn_app_with, start_binary, AppOptions, Backend, TestApp,
};
use futures::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

on_both_backends!(
    live_channels_need_a_valid_key,
    sse_streams_the_tenants_events_by_channel,
    websocket_subscribers_get_their_channels_once,
    connections_are_capped_by_tier,
    a_slow_subscriber_is_dropped_with_a_reason,
);

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A raw SSE reader: frames as (event, data) pairs.
pub(crate) struct Sse {
    response: reqwest::Response,
    buffer: String,
}

impl Sse {
    pub(crate) async fn open(base: &str, query: &str) -> Self {
        let response = reqwest::get(format!("{base}/events?{query}"))
            .await
            .expect("connect");
        Self::reading(response)
    }

    /// The stream `response` carries (the dashboard opens one with its session).
    pub(crate) fn reading(response: reqwest::Response) -> Self {
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["content-type"],
            "text/event-stream; charset=utf-8"
        );
        assert_eq!(response.headers()["cache-control"], "no-cache");
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next frame, within 10 s.
    pub(crate) async fn next(&mut self) -> (String, Value) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                let mut event = String::new();
                let mut data = String::new();
                for line in frame.lines() {
                    if let Some(value) = line.strip_prefix("event: ") {
                        event = value.to_string();
                    } else if let Some(value) = line.strip_prefix("data: ") {
                        data.push_str(value);
                    }
                }
                return (event, serde_json::from_str(&data).expect("JSON data"));
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.response.chunk())
                .await
                .expect("a frame within 10 s")
                .expect("stream")
                .expect("the stream stays open");
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }

    /// The next frame that is not a heartbeat.
    pub(crate) async fn next_event(&mut self) -> (String, Value) {
        loop {
            let frame = self.next().await;
            if frame.0 != "ping" {
                return frame;
            }
        }
    }
}

async fn connect_ws(base: &str, key: &str) -> Socket {
    let url = format!("{}/ws?api_key={key}", base.replace("http://", "ws://"));
    let (socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket");
    socket
}

/// The next JSON message that is not a heartbeat, within 10 s.
async fn receive(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a message within 10 s")
            .expect("open")
            .expect("a message");
        if let Message::Text(text) = message {
            let value: Value = serde_json::from_str(&text).expect("JSON");
            if value["type"] != "ping" {
                return value;
            }
        }
    }
}

async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::Text(message.to_string().into()))
        .await
        .expect("send");
}

fn root(app: &TestApp) -> String {
    app.url("")
}

async fn claim(app: &TestApp, id: &str, agent: &str) {
    app.post(
        &format!("/packets/{id}/claim"),
        json!({"agent_id": agent, "agent_name": agent}),
    )
    .await
    .succeeded();
}

async fn live_channels_need_a_valid_key(backend: Backend) {
    let app = spawn_app(backend).await;
    let revoked = app.key("reader", None).await;
    let listed = app.get("/keys").await;
    let revoked_id = listed
        .body
        .as_array()
        .and_then(|keys| keys.iter().find(|key| key["name"] == "reader key"))
        .map(|key| key["id"].as_str().expect("id").to_string())
        .expect("the reader key is listed");
    app.delete(&format!("/keys/{revoked_id}")).await.succeeded();
    for query in [
        "",
        "?api_key=",
        "?api_key=hr_nope",
        &format!("?api_key={revoked}"),
    ] {
        for path in ["/events", "/ws"] {
            let response = reqwest::get(app.url(&format!("{path}{query}")))
                .await
                .expect("sent");
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}{query}");
            let body: Value = response.json().await.expect("JSON");
            assert!(body["detail"].is_string());
        }
    }
    let url = format!("{}/ws", root(&app).replace("http://", "ws://"));
    assert!(
        tokio_tungstenite::connect_async(url).await.is_err(),
        "no handshake without a key"
    );
}

async fn sse_streams_the_tenants_events_by_channel(backend: Backend) {
    let app = spawn_app(backend).await;
    let reader = app.key("reader", None).await;
    let mut everything = Sse::open(&root(&app), &format!("api_key={reader}")).await;
    let mut claimed_only = Sse::open(
        &root(&app),
        &format!("api_key={reader}&subscribe=status:claimed"),
    )
    .await;
    let (event, greeting) = claimed_only.next().await;
    assert_eq!(event, "connected");
    assert!(greeting["connection_id"].is_string());
    assert_eq!(
        greeting["message"],
        "HandoffRail SSE connected. Subscribed channels: status:claimed"
    );
    assert_eq!(everything.next().await.0, "connected");

    // Another tenant's packet is never seen.
    let outsider = app.key("writer", Some("elsewhere")).await;
    let theirs = app
        .send(
            reqwest::Method::POST,
            "/packets",
            Some(&outsider),
            Some(packet_body("x", "y", "theirs")),
        )
        .await;
    assert_eq!(theirs.status, StatusCode::CREATED);
    let packet = app
        .create_packet(packet_body("planner", "worker", "ours"))
        .await;
    let id = packet["id"].as_str().expect("id");
    claim(&app, id, "worker").await;

    let (event, created) = everything.next_event().await;
    assert_eq!(event, "packet.created");
    assert_eq!(created["type"], "packet.created");
    assert_eq!(created["packet_id"], id);
    assert_eq!(created["data"]["status"], "created");
    assert_eq!(created["data"]["metadata"]["source_agent"]["id"], "planner");
    assert!(created["timestamp"].as_str().expect("time").ends_with('Z'));
    let (event, claimed) = everything.next_event().await;
    assert_eq!(event, "packet.claimed");
    assert_eq!(claimed["data"]["status"], "claimed");
    let (event, only) = claimed_only.next_event().await;
    assert_eq!(
        (event.as_str(), &only["packet_id"]),
        ("packet.claimed", &json!(id))
    );

    // A respond and a chain: their extra fields.
    let mut body = packet_body("planner", "reviewer", "approve");
    body["hitl"] = json!({"required": true, "reason": "approve?"});
    let waiting = app.create_packet(body).await;
    let waiting_id = waiting["id"].as_str().expect("id");
    app.post(
        &format!("/packets/{waiting_id}/respond"),
        json!({"response": "yes", "responded_by": "ann"}),
    )
    .await
    .succeeded();
    let child = app
        .post(
            &format!("/packets/{id}/chain"),
            packet_body("worker", "next", "follow-up"),
        )
        .await;
    assert_eq!(child.status, StatusCode::CREATED);
    assert_eq!(everything.next_event().await.0, "packet.created");
    let (event, responded) = everything.next_event().await;
    assert_eq!(event, "hitl.response_ready");
    assert_eq!(responded["data"]["hitl_response"], "yes");
    assert_eq!(responded["data"]["status"], "claimed");
    let (event, chained) = everything.next_event().await;
    assert_eq!(event, "packet.chained");
    assert_eq!(chained["packet_id"], child.body["id"]);
    assert_eq!(chained["data"]["parent_packet_id"], id);
    // The status:claimed subscriber got the respond (its packet is now claimed), nothing of the others.
    let (event, next) = claimed_only.next_event().await;
    assert_eq!(
        (event.as_str(), &next["packet_id"]),
        ("hitl.response_ready", &json!(waiting_id))
    );
}

async fn websocket_subscribers_get_their_channels_once(backend: Backend) {
    let app = spawn_app_with(
        backend,
        AppOptions {
            configure: Box::new(|config| config.live_heartbeat_seconds = 1),
            ..AppOptions::default()
        },
    )
    .await;
    let agent = app.key("agent", None).await;
    let mut socket = connect_ws(&root(&app), &agent).await;
    let connected = receive(&mut socket).await;
    assert_eq!(connected["type"], "connected");
    assert_eq!(connected["tier"], "business");
    assert!(connected["connection_id"].is_string());
    send(
        &mut socket,
        json!({"action": "subscribe", "channel": "agent:worker"}),
    )
    .await;
    assert_eq!(
        receive(&mut socket).await,
        json!({"type": "subscribed", "channel": "agent:worker"})
    );
    send(&mut socket, json!({"action": "ping"})).await;
    assert_eq!(receive(&mut socket).await["type"], "pong");
    send(&mut socket, json!({"action": "shout"})).await;
    assert_eq!(
        receive(&mut socket).await,
        json!({"type": "error", "message": "Unknown action: shout"})
    );
    socket.send(Message::Text("{".into())).await.expect("send");
    assert_eq!(
        receive(&mut socket).await,
        json!({"type": "error", "message": "Invalid JSON"})
    );

    let unrelated = app
        .create_packet(packet_body("a", "b", "not for worker"))
        .await;
    let ours = app
        .create_packet(packet_body("planner", "worker", "for worker"))
        .await;
    let id = ours["id"].as_str().expect("id");
    claim(&app, id, "worker").await;
    app.patch(&format!("/packets/{id}"), json!({"status": "in_progress"}))
        .await
        .succeeded();
    app.patch(
        &format!("/packets/{id}"),
        json!({"context": {"summary": "updated"}}),
    )
    .await
    .succeeded();
    app.patch(&format!("/packets/{id}"), json!({"status": "completed"}))
        .await
        .succeeded();
    let mut types = Vec::new();
    for _ in 0..5 {
        let event = receive(&mut socket).await;
        assert_eq!(event["packet_id"], id, "only the worker's packet: {event}");
        types.push(event["type"].as_str().expect("type").to_string());
    }
    assert_eq!(
        types,
        [
            "packet.created",
            "packet.claimed",
            "packet.in_progress",
            "packet.updated",
            "packet.completed"
        ]
    );
    assert_ne!(unrelated["id"], ours["id"]);

    // Heartbeats keep an idle connection alive and tell the client the server is there.
    let heartbeat = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Some(Ok(Message::Text(text))) = socket.next().await {
                let value: Value = serde_json::from_str(&text).expect("JSON");
                if value["type"] == "ping" {
                    return value;
                }
            }
        }
    })
    .await
    .expect("a heartbeat");
    assert!(heartbeat["timestamp"].is_string());
    let stats = app.get("/stats").await;
    assert_eq!(stats.body["active_ws_connections"], 1);
    assert!(app
        .metrics()
        .await
        .lines()
        .any(|line| line == "handoffrail_live_connections 1"));
}

async fn connections_are_capped_by_tier(backend: Backend) {
    let app = spawn_app(backend).await;
    let reply = app
        .post(
            "/keys",
            json!({"name": "free", "role": "reader", "tier": "free", "tenant_id": "small"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let free = reply.body["key"].as_str().expect("key").to_string();
    let mut first = connect_ws(&root(&app), &free).await;
    assert_eq!(receive(&mut first).await["type"], "connected");
    let refused = reqwest::get(app.url(&format!("/events?api_key={free}")))
        .await
        .expect("sent");
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let body: Value = refused.json().await.expect("JSON");
    assert_eq!(body["detail"], "Connection limit exceeded for your tier");
    // Closing frees the place.
    first.close(None).await.expect("close");
    drop(first);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let again = reqwest::get(app.url(&format!("/events?api_key={free}")))
            .await
            .expect("sent");
        if again.status() == StatusCode::OK {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the place was never freed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A WebSocket subscriber on instance B receives events caused on instance A, once each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_on_one_instance_reaches_subscribers_of_another() {
    if postgres_url().is_none() {
        notice_postgres_skipped();
        return;
    }
    init();
    let dir = tempfile::TempDir::new().expect("dir");
    let database = fresh_database(Backend::Postgres, &dir).await;
    let key = handoffrail::auth::generate_key();
    let mut a = start_binary(&database.url, dir.path(), &key);
    let mut b = start_binary(&database.url, dir.path(), &key);
    let b_root = b.base.trim_end_matches("/api/v1").to_string();
    let mut socket = connect_ws(&b_root, &key).await;
    assert_eq!(receive(&mut socket).await["type"], "connected");
    let http = reqwest::Client::new();
    let mut ids = Vec::new();
    for index in 0..20 {
        let created: Value = http
            .post(format!("{}/packets", a.base))
            .header("X-API-Key", &key)
            .json(&packet_body("a", "b", &format!("on A {index}")))
            .send()
            .await
            .expect("create on A")
            .json()
            .await
            .expect("packet");
        ids.push(created["id"].clone());
    }
    for id in &ids {
        let event = receive(&mut socket).await;
        assert_eq!(event["type"], "packet.created");
        assert_eq!(&event["packet_id"], id, "in order, each once");
    }
    for server in [&mut a, &mut b] {
        let _ = server.child.kill();
        let _ = server.child.wait();
    }
}

/// Regression (found by the slow-subscriber test picking up other tests' packets): two deployments in one
/// PostgreSQL database, each in its own schema, hear only their own events, although `NOTIFY` reaches every
/// listener of the database and both have a tenant called `default`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_in_other_schemas_of_one_database_are_not_heard() {
    if postgres_url().is_none() {
        notice_postgres_skipped();
        return;
    }
    let other = spawn_app(Backend::Postgres).await;
    let app = spawn_app(Backend::Postgres).await;
    let agent = app.key("agent", None).await;
    let mut socket = connect_ws(&root(&app), &agent).await;
    assert_eq!(receive(&mut socket).await["type"], "connected");
    let theirs = other
        .create_packet(packet_body("a", "b", "in the other schema"))
        .await;
    let ours = app.create_packet(packet_body("a", "b", "in ours")).await;
    // `theirs` was committed (and notified) before `ours` was written: heard, it would come first.
    let event = receive(&mut socket).await;
    assert_eq!(event["type"], "packet.created");
    assert_eq!(event["packet_id"], ours["id"], "not {}", theirs["id"]);
}

/// A WebSocket whose receive window is a few KiB, so that the server's writes to it block as soon as the
/// client stops reading.
async fn narrow_ws(base: &str, key: &str) -> Socket {
    let address: std::net::SocketAddr = base
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("address");
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("receive buffer");
    let stream = socket.connect(address).await.expect("connect");
    let url = format!("{}/ws?api_key={key}", base.replace("http://", "ws://"));
    let (socket, _) =
        tokio_tungstenite::client_async(url, tokio_tungstenite::MaybeTlsStream::Plain(stream))
            .await
            .expect("websocket");
    socket
}

async fn a_slow_subscriber_is_dropped_with_a_reason(backend: Backend) {
    let app = spawn_app_with(
        backend,
        AppOptions {
            configure: Box::new(|config| config.live_buffer = 8),
            ..AppOptions::default()
        },
    )
    .await;
    let agent = app.key("agent", None).await;
    let mut slow = narrow_ws(&root(&app), &agent).await;
    let mut steady = connect_ws(&root(&app), &agent).await;
    assert_eq!(receive(&mut slow).await["type"], "connected");
    assert_eq!(receive(&mut steady).await["type"], "connected");
    // The slow one reads nothing while 100 packets with 100 KB of tags each are created: its socket's buffers
    // fill, the server's write to it waits, and it falls more than its buffer of 8 events behind. Creating the
    // packets never waits for it, and the steady subscriber, which reads each event before the next packet is
    // created, gets every one (in lockstep, so that a busy test machine cannot make it fall behind too).
    let tags: Vec<String> = (0..100)
        .map(|index| format!("{index}-{}", "t".repeat(1000)))
        .collect();
    for index in 0..=100 {
        let summary = format!("burst {index}");
        let mut body = packet_body("burst", "worker", &summary);
        body["metadata"]["tags"] = json!(tags);
        let created = app.create_packet(body).await;
        let event = receive(&mut steady).await;
        assert_eq!(event["type"], "packet.created");
        assert_eq!(
            event["packet_id"], created["id"],
            "the steady subscriber got event {index}"
        );
    }
    // Reading again, the slow one finds the events that were on their way, then the close with its reason.
    let mut frames = 0;
    let close = loop {
        let message = tokio::time::timeout(Duration::from_secs(10), slow.next())
            .await
            .unwrap_or_else(|_| panic!("a message within 10 s after {frames} frames"))
            .expect("a close before the end")
            .expect("a message");
        match message {
            Message::Close(close) => break close.expect("a close frame with a reason"),
            Message::Text(_) => frames += 1,
            _ => {}
        }
    };
    assert_eq!(u16::from(close.code), 1013, "try again later");
    assert_eq!(close.reason.as_str(), handoffrail::events::live::TOO_SLOW);
    assert!(frames < 101, "{frames} frames came before the close");
}
