//! `GET /events` (SSE) and `GET /ws` (WebSocket) at the root (docs/api.md §7, decision 3): a valid `api_key`
//! query parameter is required (401 otherwise); each connection receives its tenant's events once, filtered
//! by its channels, with a heartbeat; one that falls behind is closed with a reason.

use super::error::{Error, ErrorBody};
use super::AppState;
use crate::announce::LiveNotice;
use crate::events::live::{self, Connection, Subscription, TOO_SLOW};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::stream::Stream;
use serde_json::json;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::broadcast::Receiver;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The largest message a WebSocket client may send.
const LARGEST_CLIENT_MESSAGE: usize = 64 * 1024;
/// WebSocket close code for a subscriber that fell behind (RFC 6455 §7.4.1: try again later).
const CLOSE_TRY_AGAIN_LATER: u16 = 1013;
/// How long one frame may wait for a client that does not read before the connection is dropped.
const SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Sends one frame; false when the connection is gone or the client has not taken a frame for
/// [`SEND_TIMEOUT`] (it is then dropped: its place and buffer go to others).
async fn deliver(socket: &mut WebSocket, message: Message) -> bool {
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, socket.send(message)).await,
        Ok(Ok(()))
    )
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(events))
        .routes(routes!(websocket))
}

/// `api_key` (required) and the repeated `subscribe` of a query string.
fn parse_query(query: Option<&str>) -> (Option<String>, Subscription) {
    let mut key = None;
    let mut subscription = Subscription::default();
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match name.as_ref() {
            "api_key" => key = Some(value.into_owned()),
            "subscribe" if !value.is_empty() => subscription.add(&value),
            _ => {}
        }
    }
    (key, subscription)
}

/// A place for the caller's connection: 401 without a valid key, 403 past its tier's cap.
async fn connect(state: &AppState, key: Option<String>) -> Result<Connection, Error> {
    let presented = key
        .filter(|key| !key.is_empty())
        .ok_or(Error::Unauthorized("Missing api_key"))?;
    let key = state
        .keys
        .find(state.store.as_ref(), &presented)
        .await?
        .filter(|key| !key.revoked)
        .ok_or(Error::Unauthorized("Invalid API key"))?;
    state
        .live
        .open(&key.tenant_id, key.tier)
        .ok_or_else(|| Error::Forbidden("Connection limit exceeded for your tier".into()))
}

#[utoipa::path(get, path = "/events", tag = "live", security(()),
    params(("api_key" = String, Query, description = "An API key (required)"),
           ("subscribe" = Option<Vec<String>>, Query, description = "Channels: status:<s>, packet:<id>, agent:<id> (repeatable)")),
    responses((status = 200, description = "An event stream (text/event-stream)", content_type = "text/event-stream", body = String),
              (status = 401, description = "No valid api_key", body = ErrorBody),
              (status = 403, description = "The tier's connection cap is reached", body = ErrorBody)))]
async fn events(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, Error> {
    let (key, subscription) = parse_query(query.as_deref());
    let connection = connect(&state, key).await?;
    Ok(event_stream(&state, connection, subscription))
}

/// The SSE response of one live connection (`/events`, and the dashboard's `/dashboard/events`).
pub(super) fn event_stream(
    state: &AppState,
    connection: Connection,
    subscription: Subscription,
) -> Response {
    let greeting = json!({
        "connection_id": connection.id,
        "message": format!("HandoffRail SSE connected. Subscribed channels: {}", subscription.named().join(", ")),
    });
    let stream = sse_stream(
        state.store.live_events(),
        connection,
        subscription,
        state.live.heartbeat,
        greeting,
    );
    let mut response = axum::body::Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

fn frame(event: &str, data: &str) -> Bytes {
    Bytes::from(format!("event: {event}\ndata: {data}\n\n"))
}

/// The SSE frames of one connection: the greeting, then its events, a `ping` whenever `heartbeat` passes
/// without one, and a last `error` frame when it fell behind.
fn sse_stream(
    events: Receiver<Arc<LiveNotice>>,
    connection: Connection,
    subscription: Subscription,
    heartbeat: std::time::Duration,
    greeting: serde_json::Value,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
    struct Feed {
        greeting: Option<Bytes>,
        events: Receiver<Arc<LiveNotice>>,
        connection: Connection,
        subscription: Subscription,
        ended: bool,
    }
    let feed = Feed {
        greeting: Some(frame("connected", &greeting.to_string())),
        events,
        connection,
        subscription,
        ended: false,
    };
    futures::stream::unfold(feed, move |mut feed| async move {
        if let Some(greeting) = feed.greeting.take() {
            return Some((Ok(greeting), feed));
        }
        if feed.ended {
            return None;
        }
        let next = tokio::time::timeout(heartbeat, async {
            loop {
                match feed.events.recv().await {
                    Ok(notice) if feed.connection.wants(&feed.subscription, &notice) => {
                        return Some(frame(&notice.kind, &notice.envelope));
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => {
                        feed.ended = true;
                        let error = json!({"type": "error", "message": TOO_SLOW});
                        return Some(frame("error", &error.to_string()));
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        })
        .await;
        let bytes = match next {
            Err(_) => frame("ping", &live::heartbeat().to_string()),
            Ok(Some(bytes)) => bytes,
            Ok(None) => return None,
        };
        Some((Ok(bytes), feed))
    })
}

#[utoipa::path(get, path = "/ws", tag = "live", security(()),
    params(("api_key" = String, Query, description = "An API key (required)")),
    responses((status = 101, description = "Switching to the WebSocket protocol"),
              (status = 400, description = "A valid key, but not a WebSocket upgrade request", body = ErrorBody),
              (status = 401, description = "No valid api_key", body = ErrorBody),
              (status = 403, description = "The tier's connection cap is reached", body = ErrorBody)))]
async fn websocket(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, Error> {
    let (key, subscription) = parse_query(query.as_deref());
    // The key is checked first: without one the answer is 401, upgrade or not.
    let connection = connect(&state, key).await?;
    let upgrade = upgrade.map_err(|rejection| Error::BadRequest(rejection.body_text()))?;
    let events = state.store.live_events();
    let heartbeat = state.live.heartbeat;
    // Small buffers: an idle connection holds a few KiB, not tungstenite's default 128 KiB each way; frames are
    // written at once (no write buffering), which is what live events want anyway.
    Ok(upgrade
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_message_size(LARGEST_CLIENT_MESSAGE)
        .max_frame_size(LARGEST_CLIENT_MESSAGE)
        .on_upgrade(move |socket| {
            serve_socket(socket, events, connection, subscription, heartbeat)
        }))
}

async fn serve_socket(
    mut socket: WebSocket,
    mut events: Receiver<Arc<LiveNotice>>,
    connection: Connection,
    mut subscription: Subscription,
    heartbeat: std::time::Duration,
) {
    let greeting = json!({
        "type": "connected",
        "connection_id": connection.id,
        "tier": connection.tier.as_str(),
        "message": "Connected to HandoffRail live events",
    });
    if socket
        .send(Message::Text(greeting.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    loop {
        tokio::select! {
            received = events.recv() => match received {
                Ok(notice) if connection.wants(&subscription, &notice) => {
                    if !deliver(&mut socket, Message::Text(notice.envelope.clone().into())).await {
                        return;
                    }
                }
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => {
                    let close = CloseFrame { code: CLOSE_TRY_AGAIN_LATER, reason: TOO_SLOW.into() };
                    deliver(&mut socket, Message::Close(Some(close))).await;
                    return;
                }
                Err(RecvError::Closed) => return,
            },
            message = socket.recv() => match message {
                Some(Ok(Message::Text(text))) => {
                    if let Some(reply) = live::answer(&mut subscription, text.as_str()) {
                        if !deliver(&mut socket, Message::Text(reply.to_string().into())).await {
                            return;
                        }
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
            _ = ticker.tick() => {
                if !deliver(&mut socket, Message::Text(live::heartbeat().to_string().into())).await {
                    return;
                }
            }
        }
    }
}
