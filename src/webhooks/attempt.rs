//! One HTTP attempt of one delivery: `POST` the event's body with its signatures, within the timeout (10 s by
//! default), redirects not followed, to an address the SSRF guard checked at this very attempt.

use super::schedule::parse_retry_after;
use super::signing::sign;
use super::ssrf::{Blocked, Guard};
use super::TakenDelivery;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::error::Error as _;
use std::sync::Arc;
use std::time::Duration;

/// How much of a refusing receiver's body `last_error` keeps.
const ERROR_BODY_CHARS: usize = 200;

/// What an attempt came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx answer.
    Delivered { status: u16 },
    /// 410 Gone: the receiver asks never to be called again; the hook is deactivated.
    Gone { status: u16 },
    /// Anything else: another status, a refused destination, a network error or the timeout.
    Failed {
        status: Option<u16>,
        error: String,
        /// A 429's or 503's `Retry-After`.
        retry_after: Option<Duration>,
    },
}

/// Sends deliveries; one per process, sharing connections between attempts.
#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    guard: Guard,
}

impl Sender {
    pub fn new(guard: Guard, timeout: Duration) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("HandoffRail-Webhooks/", env!("CARGO_PKG_VERSION")))
            // Names are resolved by the guard, which refuses internal addresses; the connection goes only to
            // the addresses it returned.
            .dns_resolver(Arc::new(GuardedResolver(guard.clone())))
            .no_proxy()
            .build()?;
        Ok(Self { client, guard })
    }

    pub async fn attempt(&self, delivery: &TakenDelivery) -> Outcome {
        let url = match url::Url::parse(&delivery.url) {
            Ok(url) => url,
            Err(error) => return failed(None, format!("Invalid URL: {error}")),
        };
        // An address literal never reaches the resolver: check it here.
        if let Some(host) = url.host() {
            if !matches!(host, url::Host::Domain(_)) {
                if let Err(blocked) = self.guard.destinations(&url).await {
                    return failed(None, blocked.to_string());
                }
            }
        }
        let timestamp = chrono::Utc::now().timestamp();
        let event_id = delivery.event_id.to_string();
        let signatures = sign(
            &delivery.secret,
            &event_id,
            timestamp,
            delivery.body.as_bytes(),
        );
        let sent = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &event_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", &signatures.standard)
            .header("x-hr-signature", &signatures.legacy)
            .header("x-hr-event", &delivery.event_type)
            .header("x-hr-delivery-id", delivery.id.to_string())
            .body(delivery.body.clone())
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(error) => return failed(None, describe(&error)),
        };
        let status = response.status();
        if status.is_success() {
            // Read to its end (a short answer) so the connection serves the next attempt.
            first_chars(response).await;
            return Outcome::Delivered {
                status: status.as_u16(),
            };
        }
        if status == reqwest::StatusCode::GONE {
            return Outcome::Gone {
                status: status.as_u16(),
            };
        }
        let retry_after = matches!(status.as_u16(), 429 | 503)
            .then(|| response.headers().get(reqwest::header::RETRY_AFTER))
            .flatten()
            .and_then(|value| value.to_str().ok())
            .and_then(|value| parse_retry_after(value, chrono::Utc::now()));
        let body = first_chars(response).await;
        Outcome::Failed {
            status: Some(status.as_u16()),
            error: format!("HTTP {}: {body}", status.as_u16()),
            retry_after,
        }
    }
}

fn failed(status: Option<u16>, error: String) -> Outcome {
    Outcome::Failed {
        status,
        error,
        retry_after: None,
    }
}

/// The start of a refusal's body, read no further than needed.
async fn first_chars(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < ERROR_BODY_CHARS * 4 {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    String::from_utf8_lossy(&bytes)
        .chars()
        .take(ERROR_BODY_CHARS)
        .collect()
}

/// An error with its causes (reqwest's own text names only the URL; the cause says what happened).
fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "timed out".to_string();
    }
    let mut text = String::new();
    let mut cause: Option<&dyn std::error::Error> = error.source();
    while let Some(current) = cause {
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&current.to_string());
        cause = current.source();
    }
    if text.is_empty() {
        error.to_string()
    } else {
        text
    }
}

/// reqwest's resolver, through the guard: only checked addresses come back.
struct GuardedResolver(Guard);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.0.clone();
        Box::pin(async move {
            // The port is set from the URL by the connector.
            let addresses = guard
                .check(name.as_str(), 0)
                .await
                .map_err(|blocked: Blocked| {
                    Box::new(blocked) as Box<dyn std::error::Error + Send + Sync>
                })?;
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhooks::signing::Secret;
    use crate::webhooks::ssrf::Resolver;
    use async_trait::async_trait;
    use std::net::{IpAddr, SocketAddr};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Resolves every name to one address.
    struct Always(IpAddr);

    #[async_trait]
    impl Resolver for Always {
        async fn resolve(&self, _: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
            Ok(vec![SocketAddr::new(self.0, port)])
        }
    }

    fn delivery(url: String) -> TakenDelivery {
        TakenDelivery {
            id: uuid::Uuid::now_v7(),
            webhook_id: uuid::Uuid::now_v7(),
            event_id: uuid::Uuid::now_v7(),
            event_type: "packet.created".into(),
            body: "{}".into(),
            attempt: 1,
            url,
            secret: Secret::new("0123456789abcdef".into()),
        }
    }

    fn sender(allowed: &[&str]) -> Sender {
        let allowed: Vec<String> = allowed.iter().map(|host| host.to_string()).collect();
        let guard = Guard::new(&allowed, Arc::new(Always(IpAddr::from([127, 0, 0, 1]))));
        Sender::new(guard, Duration::from_secs(5)).expect("client")
    }

    #[tokio::test]
    async fn a_name_that_now_resolves_inside_is_not_called() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let outcome = sender(&[])
            .attempt(&delivery(format!("http://hooks.example.test:{port}/in")))
            .await;
        match outcome {
            Outcome::Failed {
                status: None,
                error,
                ..
            } => assert!(
                error.contains("Hostname 'hooks.example.test' resolves to blocked IP 127.0.0.1"),
                "{error}"
            ),
            other => panic!("delivered to a rebound name: {other:?}"),
        }
        // The attempt has returned: had it connected, the connection would be waiting here.
        assert_eq!(
            listener.accept().map_err(|error| error.kind()).err(),
            Some(std::io::ErrorKind::WouldBlock),
            "the receiver was connected to"
        );
    }

    #[tokio::test]
    async fn an_allowed_name_is_called_at_the_address_checked() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            let mut request = vec![0; 4096];
            let read = stream.read(&mut request).await.expect("read");
            stream
                .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                .await
                .expect("write");
            String::from_utf8_lossy(&request[..read]).to_lowercase()
        });
        let outcome = sender(&["hooks.example.test"])
            .attempt(&delivery(format!("http://hooks.example.test:{port}/in")))
            .await;
        assert_eq!(outcome, Outcome::Delivered { status: 204 });
        let request = server.await.expect("receiver");
        assert!(request.starts_with("post /in http/1.1"), "{request}");
        assert!(request.contains("host: hooks.example.test:"), "{request}");
        assert!(request.contains("webhook-signature: v1,"), "{request}");
    }

    #[tokio::test]
    async fn redirects_are_not_followed() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            let mut request = vec![0; 4096];
            let _ = stream.read(&mut request).await;
            let _ = stream
                .write_all(b"HTTP/1.1 307 Temporary Redirect\r\nlocation: http://127.0.0.1:1/\r\ncontent-length: 5\r\n\r\nmoved")
                .await;
        });
        let outcome = sender(&["127.0.0.1"])
            .attempt(&delivery(format!("http://127.0.0.1:{port}/in")))
            .await;
        assert_eq!(
            outcome,
            Outcome::Failed {
                status: Some(307),
                error: "HTTP 307: moved".into(),
                retry_after: None
            }
        );
    }
}
