//! Accepting connections so that no client can hold the service hostage: a cap on open connections per
//! listener (one over the cap gets a 503 and is closed), a deadline for each request head (which also ends a
//! kept-alive connection that sends nothing), an idle deadline on every byte stream (bodies, tunnels), and
//! an open-files limit raised at start so that the caps, not the kernel, are what refuse.

use hyper::body::Incoming;
use hyper::service::Service;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::time::{Instant, Sleep};
use tokio_util::task::TaskTracker;

/// Deadlines and caps of one listener (flags `--max-connections`, `--header-timeout`, `--idle-timeout`,
/// `--tls-handshake-timeout`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Open connections at once; more are answered 503 and closed.
    pub max_connections: usize,
    /// Time to send a request head, counted from when the connection is ready for one (so it also closes a
    /// kept-alive connection that sends no further request).
    pub header_timeout: Duration,
    /// Time without a byte in either direction before a connection or tunnel is closed.
    pub idle_timeout: Duration,
    /// Time for an agent to complete the TLS handshake inside a CONNECT tunnel.
    pub tls_handshake_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 10_000,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            tls_handshake_timeout: Duration::from_secs(10),
        }
    }
}

impl ConnectionLimits {
    /// An HTTP/1.1 connection builder with the head deadline armed.
    pub fn http1(&self) -> hyper::server::conn::http1::Builder {
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_timeout)
            .preserve_header_case(true);
        builder
    }
}

/// Raises the soft open-files limit to the hard one and returns the limit now in force; each connection
/// holds a descriptor (a proxied one two), and the default 1,024 runs out long before the caps.
pub fn raise_open_files_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed by pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    Some(limit.rlim_cur)
}

/// The connection cap a listener can honour: the configured one, or what a share of the open-files limit
/// allows (`shares` descriptors per connection across the process's listeners), whichever is lower.
pub fn affordable_connections(configured: usize, open_files: Option<u64>, shares: u64) -> usize {
    /// Descriptors kept for the database pool, upstream pools, files and the listeners themselves.
    const RESERVED: u64 = 256;
    match open_files {
        Some(limit) => {
            let share = limit.saturating_sub(RESERVED) / shares.max(1);
            configured.min(share.max(16) as usize)
        }
        None => configured,
    }
}

/// How a listener answers requests hyper refuses before any service sees them (a request line or header
/// that is not HTTP/1.1, a URI over 64 KiB, headers over the buffer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseErrors {
    /// hyper's own empty answers (the proxy: they go to agents' HTTP clients, which expect nothing more).
    AsHyperWrites,
    /// The API's error shape: `{"detail": ...}` JSON, like every other answer.
    Json,
}

/// Serves HTTP/1.1 on `listener` until `shutdown`, then lets open connections finish for up to `drain`.
/// `service` builds the service of one connection from the peer's address.
#[allow(clippy::too_many_arguments)]
pub async fn serve<S, B>(
    name: &'static str,
    listener: TcpListener,
    limits: ConnectionLimits,
    parse_errors: ParseErrors,
    service: impl Fn(SocketAddr) -> S,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) where
    S: Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let connections = TaskTracker::new();
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors or memory: wait for connections to close instead of spinning.
                    tracing::warn!(%error, listener = name, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            connections.spawn(refuse(stream));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let connection = limits
            .http1()
            .serve_connection(
                TokioIo::new(Watched::new(stream, limits.idle_timeout).answering(parse_errors)),
                service(peer),
            )
            .with_upgrades();
        let mut stop = stop_rx.clone();
        connections.spawn(async move {
            let _slot = slot;
            let mut connection = std::pin::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                _ = async { let _ = stop.wait_for(|stopped| *stopped).await; } => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = ended {
                tracing::debug!(%peer, %error, listener = name, source = "downstream", "connection ended");
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    connections.close();
    if tokio::time::timeout(drain, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            listener = name,
            "connections still open after {drain:?}; stopping anyway"
        );
    }
}

/// A connection over the cap: a short 503 and close, without waiting on the client for long.
async fn refuse(mut stream: TcpStream) {
    const BODY: &str = r#"{"detail":"Too many open connections; retry shortly"}"#;
    let reply = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(reply.as_bytes())).await;
}

/// A byte stream that fails with `TimedOut` once nothing has moved in either direction for `idle`.
/// The deadline is only watched while the stream is being waited on, so a request that is being worked on
/// (no reads asked for) is never cut.
pub struct Watched<T> {
    inner: T,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
    parse_errors: ParseErrors,
    /// A JSON answer being written in place of hyper's empty one: (bytes, written so far, length replaced).
    rewrite: Option<(Vec<u8>, usize, usize)>,
}

impl<T> Watched<T> {
    pub fn new(inner: T, idle: Duration) -> Watched<T> {
        Watched {
            inner,
            idle,
            deadline: Box::pin(tokio::time::sleep(idle)),
            parse_errors: ParseErrors::AsHyperWrites,
            rewrite: None,
        }
    }

    /// Writes hyper's automatic answers as `parse_errors` says.
    pub fn answering(mut self, parse_errors: ParseErrors) -> Watched<T> {
        self.parse_errors = parse_errors;
        self
    }

    fn moved(&mut self) {
        self.deadline.as_mut().reset(Instant::now() + self.idle);
    }

    /// Pending I/O: pending until the deadline, then an error that closes the connection.
    fn wait(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.deadline.as_mut().poll(cx));
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "connection idle for too long",
        )))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                this.moved();
                Poll::Ready(result)
            }
            Poll::Pending => this.wait(cx),
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.rewrite.is_none() && this.parse_errors == ParseErrors::Json {
            if let Some(json) = json_answer_for(data) {
                this.rewrite = Some((json, 0, data.len()));
            }
        }
        if let Some((bytes, written, replaces)) = this.rewrite.as_mut() {
            while *written < bytes.len() {
                match Pin::new(&mut this.inner).poll_write(cx, &bytes[*written..]) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Poll::Ready(Ok(count)) => *written += count,
                    Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                    Poll::Pending => return this.wait(cx).map(|result| result.map(|()| 0)),
                }
            }
            let replaced = *replaces;
            this.rewrite = None;
            this.moved();
            return Poll::Ready(Ok(replaced));
        }
        match Pin::new(&mut this.inner).poll_write(cx, data) {
            Poll::Ready(result) => {
                this.moved();
                Poll::Ready(result)
            }
            Poll::Pending => this.wait(cx).map(|result| result.map(|()| 0)),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Pending => this.wait(cx),
            ready => ready,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(result) => {
                this.moved();
                Poll::Ready(result)
            }
            Poll::Pending => this.wait(cx).map(|result| result.map(|()| 0)),
        }
    }

    fn is_write_vectored(&self) -> bool {
        // Whole heads arrive in one `poll_write` then, which is where an automatic answer is recognised.
        self.parse_errors == ParseErrors::AsHyperWrites && self.inner.is_write_vectored()
    }
}

/// hyper's automatic answer to a request it could not parse — a 400, 414 or 431 head with no body, which no
/// handler of ours ever sends — rewritten in the API's JSON error shape.
fn json_answer_for(data: &[u8]) -> Option<Vec<u8>> {
    let head_end = data.windows(4).position(|window| window == b"\r\n\r\n")?;
    if head_end + 4 != data.len() {
        return None;
    }
    let head = std::str::from_utf8(&data[..head_end]).ok()?;
    let (status, detail) = match head.get(..12)? {
        "HTTP/1.1 400" => (
            "400 Bad Request",
            "Malformed request: the request line, a header or the path is not valid HTTP/1.1",
        ),
        "HTTP/1.1 414" => ("414 URI Too Long", "Request URI too long"),
        "HTTP/1.1 431" => (
            "431 Request Header Fields Too Large",
            "Request headers too large",
        ),
        _ => return None,
    };
    let empty = head
        .lines()
        .any(|line| line.eq_ignore_ascii_case("content-length: 0"));
    if !empty {
        return None;
    }
    let body = serde_json::json!({ "detail": detail }).to_string();
    Some(
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_fit_the_open_files_limit() {
        assert_eq!(affordable_connections(10_000, Some(1_024), 3), 256);
        assert_eq!(affordable_connections(10_000, Some(1_048_576), 3), 10_000);
        assert_eq!(affordable_connections(500, None, 3), 500);
        assert_eq!(affordable_connections(10_000, Some(100), 3), 16);
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_stream_times_out_and_a_busy_one_does_not() {
        use tokio::io::AsyncReadExt;
        let (client, server) = tokio::io::duplex(64);
        let mut watched = Watched::new(server, Duration::from_secs(5));
        let mut client = client;
        let writer = tokio::spawn(async move {
            for _ in 0..3 {
                tokio::time::sleep(Duration::from_secs(4)).await;
                client.write_all(b"x").await.expect("write");
            }
            // Then silence, with the stream kept open.
            tokio::time::sleep(Duration::from_secs(60)).await;
            drop(client);
        });
        let mut byte = [0u8; 1];
        for _ in 0..3 {
            watched
                .read_exact(&mut byte)
                .await
                .expect("a byte every 4 s is not idle");
        }
        let error = watched.read(&mut byte).await.expect_err("5 s of silence");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        writer.abort();
    }
}
