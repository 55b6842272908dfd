//! Listeners under hostile clients: slow heads, idle keep-alive connections, stalled TLS handshakes inside
//! CONNECT and floods past the connection cap are closed or refused by the server's own deadlines, and the
//! API keeps answering while the proxy port is flooded. (Listener behaviour, not storage: SQLite only.)

use crate::support::{spawn_app_with, AppOptions, Backend, TestApp};
use base64::Engine;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Short deadlines so that the tests see them act; the defaults are 10 s, 120 s and 10 s.
async fn app_with_deadlines(max_connections: usize) -> TestApp {
    spawn_app_with(
        Backend::Sqlite,
        AppOptions {
            configure: Box::new(move |config| {
                config.connections.header_timeout = 0.5;
                config.connections.idle_timeout = 1.0;
                config.connections.tls_handshake_timeout = 0.5;
                config.connections.max_connections = max_connections;
            }),
            ..AppOptions::default()
        },
    )
    .await
}

/// Reads until the server closes the connection; everything it sent. Fails the test if the server keeps
/// the connection open far past every configured deadline.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(20), async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(read) => received.extend_from_slice(&buffer[..read]),
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the server never closed the connection");
    received
}

fn proxy_authorization(key: &str) -> String {
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!("agent-1:{key}"));
    format!("Proxy-Authorization: Basic {credentials}\r\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_request_head_is_cut_off_on_both_listeners() {
    let app = app_with_deadlines(100).await;
    for addr in [app.addr, app.proxy_addr.expect("proxy runs")] {
        let mut slowloris = TcpStream::connect(addr).await.expect("connect");
        slowloris
            .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .expect("partial head");
        let reply = read_until_closed(&mut slowloris).await;
        assert!(
            !reply.starts_with(b"HTTP/1.1 200"),
            "a partial head was never answered"
        );
    }
    app.assert_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_kept_alive_connection_is_closed() {
    let app = app_with_deadlines(100).await;
    let mut client = TcpStream::connect(app.addr).await.expect("connect");
    client
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("request");
    let reply = read_until_closed(&mut client).await;
    assert!(
        reply.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    // A connection that never sends a byte is closed too.
    let mut silent = TcpStream::connect(app.addr).await.expect("connect");
    assert!(read_until_closed(&mut silent).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_tls_handshake_inside_connect_is_cut_off() {
    let app = app_with_deadlines(100).await;
    let mut agent = TcpStream::connect(app.proxy_addr.expect("proxy runs"))
        .await
        .expect("connect");
    let connect = format!(
        "CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n{}\r\n",
        proxy_authorization(&app.admin_key)
    );
    agent.write_all(connect.as_bytes()).await.expect("CONNECT");
    // The tunnel opens, then the agent never sends its ClientHello.
    let reply = read_until_closed(&mut agent).await;
    assert!(
        reply.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_get_503_and_the_api_keeps_answering() {
    let app = app_with_deadlines(5).await;
    let proxy = app.proxy_addr.expect("proxy runs");
    let mut held = Vec::new();
    for _ in 0..5 {
        let mut stream = TcpStream::connect(proxy).await.expect("connect");
        // A partial head keeps each connection open without completing a request.
        stream
            .write_all(b"GET http://x/ HTTP/1.1\r\n")
            .await
            .expect("write");
        held.push(stream);
    }
    let mut refused = TcpStream::connect(proxy).await.expect("connect");
    let reply = String::from_utf8_lossy(&read_until_closed(&mut refused).await).to_string();
    assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
    assert!(reply.contains("connection: close"), "{reply}");
    assert!(
        reply.ends_with(r#"{"detail":"Too many open connections; retry shortly"}"#),
        "{reply}"
    );
    // The API has a cap of its own: the flood on the proxy port does not reach it.
    app.assert_healthy().await;
    // Once the held connections are cut off by their deadline, the proxy accepts again.
    for mut stream in held {
        read_until_closed(&mut stream).await;
    }
    let mut again = TcpStream::connect(proxy).await.expect("connect");
    again
        .write_all(b"GET http://127.0.0.1:9/ HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\r\n")
        .await
        .expect("request");
    let reply = String::from_utf8_lossy(&read_until_closed(&mut again).await).to_string();
    assert!(reply.starts_with("HTTP/1.1 407"), "{reply}");
}

/// Raw bytes to the API; the whole answer (the server closes after these).
async fn raw_answer(app: &TestApp, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    stream.write_all(request).await.expect("request");
    String::from_utf8_lossy(&read_until_closed(&mut stream).await).to_string()
}

fn json_body(answer: &str) -> serde_json::Value {
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    serde_json::from_str(body).unwrap_or_else(|error| panic!("{error}: {answer}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_hyper_refuses_are_answered_in_json() {
    let app = app_with_deadlines(100).await;
    let long = format!(
        "GET /api/v1/packets?q={} HTTP/1.1\r\nHost: x\r\n\r\n",
        "a".repeat(70_000)
    );
    let answer = raw_answer(&app, long.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 414"), "{answer}");
    assert!(
        answer.contains("content-type: application/json"),
        "{answer}"
    );
    assert_eq!(json_body(&answer)["detail"], "Request URI too long");
    let answer = raw_answer(&app, b"GET /api/v1/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(json_body(&answer)["detail"]
        .as_str()
        .is_some_and(|detail| detail.starts_with("Malformed request")));
    let answer = raw_answer(&app, b"NOT HTTP AT ALL\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(json_body(&answer)["detail"].is_string());
    app.assert_healthy().await;
}
