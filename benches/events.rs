//! Load generator for webhooks and live events against a running server (`scripts/load-events.sh` starts one
//! per backend, pinned to core 0; this runs on core 1 with its own webhook receiver):
//!
//! - `deliveries`: N dead letters put back by retry-all at once, delivered to the receiver: deliveries/s;
//! - `latency`: packets created at a fixed rate, each one's `packet.created` frame timed on a WebSocket from
//!   the event's timestamp (taken before the commit) and from the creation's response (right after the
//!   commit) to the frame's arrival: p50/p99;
//! - `idle`: 1,000 WebSocket connections opened and held (the script reads the server's RSS around it);
//! - `lifecycle`: create → claim → in_progress → complete at concurrency 50, in rounds without a webhook and
//!   with one active hook receiving every event;
//! - `lifecycles` and `hooked-lifecycles`: the same at concurrency 50 for `--seconds`, without a hook or with one
//!   (replacing any hook the tenant has; its deliveries are awaited), printing `# lifecycles: N` (for
//!   `scripts/instructions.sh`, which counts the server's instructions per lifecycle).
//!
//!     cargo bench --bench events -- --url http://127.0.0.1:8080 --api-key hr_… --mode deliveries

use futures::StreamExt;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Args {
    url: String,
    key: String,
    mode: String,
    count: usize,
    seconds: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        url: String::new(),
        key: String::new(),
        mode: "deliveries".into(),
        count: 10_000,
        seconds: 10,
    };
    let mut raw = std::env::args().skip(1);
    while let Some(flag) = raw.next() {
        let mut value = || raw.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => args.url = value()?,
            "--api-key" => args.key = value()?,
            "--mode" => args.mode = value()?,
            "--count" => args.count = value()?.parse().map_err(|_| "--count takes a number")?,
            "--seconds" => {
                args.seconds = value()?.parse().map_err(|_| "--seconds takes a number")?
            }
            "--bench" => {}
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if args.url.is_empty() || args.key.is_empty() {
        return Err("--url and --api-key are required".into());
    }
    Ok(args)
}

/// A receiver answering `status` (shared, changeable) and counting what it got.
struct Receiver {
    url: String,
    received: Arc<AtomicU64>,
    status: Arc<AtomicU64>,
}

async fn receiver() -> Receiver {
    let received = Arc::new(AtomicU64::new(0));
    let status = Arc::new(AtomicU64::new(200));
    let (count, answer) = (received.clone(), status.clone());
    let app = axum::Router::new().fallback(move || {
        let (count, answer) = (count.clone(), answer.clone());
        async move {
            count.fetch_add(1, Ordering::Relaxed);
            axum::http::StatusCode::from_u16(answer.load(Ordering::Relaxed) as u16)
                .unwrap_or(axum::http::StatusCode::OK)
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    Receiver {
        url,
        received,
        status,
    }
}

struct Api {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Api {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .http
            .request(method, format!("{}/api/v1{path}", self.base))
            .header("X-API-Key", &self.key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let value: Value = response.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {value}");
        value
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }
}

fn packet(index: usize) -> Value {
    json!({"metadata": {"source_agent": {"id": "bench-a", "name": "A"}, "target_agent": {"id": "bench-b", "name": "B"}},
           "context": {"summary": format!("bench {index}")}})
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn deliveries(api: &Api, args: &Args) {
    let receiver = receiver().await;
    receiver.status.store(500, Ordering::Relaxed);
    api.post("/hooks", json!({"url": receiver.url, "events": ["packet.created"], "secret": "bench-secret-0123456789"}))
        .await;
    // Every delivery fails once (the schedule has no retries) and becomes a dead letter.
    for start in (0..args.count).step_by(50) {
        let batch: Vec<_> = (start..(start + 50).min(args.count)).map(packet).collect();
        api.post("/packets/batch", json!({"packets": batch})).await;
    }
    let total = args.count as u64;
    while receiver.received.load(Ordering::Relaxed) < total {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    loop {
        let dead = api
            .call(reqwest::Method::GET, "/hooks/dlq?limit=1&offset=0", None)
            .await;
        let figures = api.call(reqwest::Method::GET, "/system/health", None).await;
        if dead.as_array().is_some_and(|d| !d.is_empty())
            && figures["failed_deliveries_1h"].as_u64() >= Some(total)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    receiver.status.store(200, Ordering::Relaxed);
    receiver.received.store(0, Ordering::Relaxed);
    let started = Instant::now();
    let retried = api.post("/hooks/dlq/retry-all", json!({})).await;
    assert_eq!(retried["retried"].as_u64(), Some(total), "{retried}");
    while receiver.received.load(Ordering::Relaxed) < total {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "| webhook deliveries | {total} | {:.0} deliveries/s | {elapsed:.2} s |",
        total as f64 / elapsed
    );
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn socket(args: &Args) -> Socket {
    let url = format!(
        "{}/ws?api_key={}",
        args.url.replace("http://", "ws://"),
        args.key
    );
    tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket")
        .0
}

/// Two views of one frame's delay: from the event's `timestamp` (taken before the commit, so it includes the
/// write itself) and from the commit, which the client sees as the creation's response (sent right after
/// it; a frame that arrives before the response counts as negative).
async fn latency(api: Arc<Api>, args: &Args) {
    let mut ws = socket(args).await;
    let rate = 500u64;
    let total = (rate * args.seconds) as usize;
    let answered = Arc::new(std::sync::Mutex::new(HashMap::new()));
    let responses = answered.clone();
    let creator = tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
        let mut tasks = Vec::new();
        for index in 0..total {
            ticker.tick().await;
            let (api, responses) = (api.clone(), responses.clone());
            tasks.push(tokio::spawn(async move {
                let created = api.post("/packets", packet(index)).await;
                let at = Instant::now();
                if let Some(id) = created["id"].as_str() {
                    responses
                        .lock()
                        .expect("responses")
                        .insert(id.to_string(), at);
                }
            }));
        }
        for task in tasks {
            let _ = task.await;
        }
    });
    let mut from_event = Vec::with_capacity(total);
    let mut frames = Vec::with_capacity(total);
    while from_event.len() < total {
        let Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text))) = ws.next().await else {
            continue;
        };
        let (arrived, arrived_at) = (chrono::Utc::now(), Instant::now());
        let event: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if event["type"] != "packet.created" {
            continue;
        }
        let Some(at) = event["timestamp"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        else {
            continue;
        };
        from_event.push(
            (arrived - at.with_timezone(&chrono::Utc))
                .num_microseconds()
                .unwrap_or(0) as f64
                / 1000.0,
        );
        frames.push((
            event["packet_id"].as_str().unwrap_or_default().to_string(),
            arrived_at,
        ));
    }
    let _ = creator.await;
    let responses = answered.lock().expect("responses");
    let mut from_commit: Vec<f64> = frames
        .iter()
        .filter_map(|(id, arrived)| {
            let answered = responses.get(id)?;
            let millis = |d: Duration| d.as_secs_f64() * 1000.0;
            Some(match arrived.checked_duration_since(*answered) {
                Some(after) => millis(after),
                None => -millis(answered.duration_since(*arrived)),
            })
        })
        .collect();
    from_event.sort_by(f64::total_cmp);
    from_commit.sort_by(f64::total_cmp);
    println!(
        "| event → WebSocket frame, {rate} events/s | {total} | from the event p50 {:.2} ms, p99 {:.2} ms | from the commit (the response) p50 {:.2} ms, p99 {:.2} ms |",
        percentile(&from_event, 0.5),
        percentile(&from_event, 0.99),
        percentile(&from_commit, 0.5),
        percentile(&from_commit, 0.99)
    );
}

async fn idle(args: &Args) {
    let mut sockets = Vec::new();
    for _ in 0..1000 {
        let mut ws = socket(args).await;
        let _ = ws.next().await; // connected
        sockets.push(ws);
    }
    println!("# 1000 idle WebSocket connections open");
    // The script reads the server's RSS now; hold the connections until it says it has.
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    for mut ws in sockets {
        let _ = ws.close(None).await;
    }
}

/// Rounds of the `lifecycle` mode.
const ROUNDS: usize = 3;

/// One active hook asking for the four events of a lifecycle, to `receiver`; the hook as registered.
async fn register_hook(api: &Api, receiver: &Receiver) -> Value {
    api.post(
        "/hooks",
        json!({"url": receiver.url, "secret": "bench-secret-0123456789",
        "events": ["packet.created", "packet.claimed", "packet.in_progress", "packet.completed"]}),
    )
    .await
}

/// Lifecycles completed in `seconds` (each one started is finished).
async fn lifecycles(api: Arc<Api>, seconds: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let done = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..50)
        .map(|worker| {
            let (api, done) = (api.clone(), done.clone());
            tokio::spawn(async move {
                let mut index = 0;
                while Instant::now() < deadline {
                    let created = api
                        .post("/packets", packet(worker * 1_000_000 + index))
                        .await;
                    let id = created["id"].as_str().unwrap_or_default().to_string();
                    api.post(
                        &format!("/packets/{id}/claim"),
                        json!({"agent_id": "bench-b", "agent_name": "B"}),
                    )
                    .await;
                    for status in ["in_progress", "completed"] {
                        api.call(
                            reqwest::Method::PATCH,
                            &format!("/packets/{id}"),
                            Some(json!({"status": status})),
                        )
                        .await;
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                    index += 1;
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.await;
    }
    done.load(Ordering::Relaxed)
}

#[tokio::main]
async fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(error) => {
            eprintln!("usage error: {error}");
            std::process::exit(64);
        }
    };
    let api = Arc::new(Api {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(100)
            .build()
            .expect("client"),
        base: args.url.clone(),
        key: args.key.clone(),
    });
    match args.mode.as_str() {
        "deliveries" => deliveries(&api, &args).await,
        "latency" => latency(api, &args).await,
        "idle" => idle(&args).await,
        "lifecycle" => {
            // Rounds alternate without and with the hook (removed in between), so that neither side runs only
            // on the larger database or in the machine's slower moment.
            let per_second = |count: u64| count as f64 / args.seconds as f64;
            let receiver = receiver().await;
            let (mut without, mut with, mut expected) = (Vec::new(), Vec::new(), 0);
            let mut drained_after = Vec::new();
            for _ in 0..ROUNDS {
                without.push(per_second(lifecycles(api.clone(), args.seconds).await));
                let hook = register_hook(&api, &receiver).await;
                let done = lifecycles(api.clone(), args.seconds).await;
                with.push(per_second(done));
                // Every lifecycle's four events must reach the receiver; how long after the last lifecycle
                // the backlog took to drain says whether delivery kept up.
                let stopped = Instant::now();
                expected += done * 4;
                while receiver.received.load(Ordering::Relaxed) < expected {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                drained_after.push(format!("{:.2}", stopped.elapsed().as_secs_f64()));
                let id = hook["id"].as_str().unwrap_or_default();
                api.call(reqwest::Method::DELETE, &format!("/hooks/{id}"), None)
                    .await;
            }
            let mean = |rates: &[f64]| rates.iter().sum::<f64>() / rates.len() as f64;
            let rounds = |rates: &[f64]| {
                rates
                    .iter()
                    .map(|rate| format!("{rate:.0}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            println!(
                "| lifecycles/s, concurrency 50, {ROUNDS} rounds | without a webhook {:.0} ({}) | with one hook {:.0} ({}) ({:+.1} %) | {expected} deliveries, each round's drained {} s after it |",
                mean(&without),
                rounds(&without),
                mean(&with),
                rounds(&with),
                (mean(&with) / mean(&without) - 1.0) * 100.0,
                drained_after.join(", "),
            );
        }
        "lifecycles" => println!("# lifecycles: {}", lifecycles(api, args.seconds).await),
        "hooked-lifecycles" => {
            let receiver = receiver().await;
            // A hook of an earlier run (a warm-up) points at a receiver that is gone.
            let hooks = api.call(reqwest::Method::GET, "/hooks", None).await;
            for hook in hooks.as_array().into_iter().flatten() {
                let id = hook["id"].as_str().unwrap_or_default();
                api.call(reqwest::Method::DELETE, &format!("/hooks/{id}"), None)
                    .await;
            }
            register_hook(&api, &receiver).await;
            let done = lifecycles(api.clone(), args.seconds).await;
            while receiver.received.load(Ordering::Relaxed) < done * 4 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            println!("# lifecycles: {done}");
        }
        other => {
            eprintln!("unknown mode {other}");
            std::process::exit(64);
        }
    }
}
