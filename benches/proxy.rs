//! Load generator for the interceptor: measures an upstream called directly and the same upstream called through
//! the proxy (recording on), at fixed request rates (open loop) and at fixed concurrency (closed loop, up to
//! saturation), and reports throughput, latency percentiles and the latency the proxy adds.
//!
//! The upstream runs inside this process on a runtime of its own and answers every request with the same
//! 1.8 KB JSON document. Connections are kept alive on both legs, as an agent's HTTP client keeps them.
//!
//! `scripts/load-proxy.sh` starts the server pinned to one core and runs this on the other; by hand:
//!
//!     cargo bench --bench proxy -- --proxy 127.0.0.1:8081 --api-key hr_… \
//!         --rates 500,2000 --concurrency 1,10,50 --seconds 10

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};

struct Args {
    proxy: SocketAddr,
    api_key: String,
    rates: Vec<u64>,
    concurrency: Vec<usize>,
    seconds: u64,
    label: String,
    /// The CPU the upstream runs on; by default it shares the generator's.
    upstream_cpu: Option<usize>,
}

fn parse_list<T: std::str::FromStr>(flag: &str, value: &str) -> Result<Vec<T>, String> {
    value
        .split(',')
        .filter(|item| !item.trim().is_empty())
        .map(|item| {
            item.trim()
                .parse()
                .map_err(|_| format!("{flag}: bad number {item}"))
        })
        .collect()
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        proxy: "127.0.0.1:8081".parse().map_err(|_| "bad default")?,
        api_key: std::env::var("HANDOFFRAIL_API_KEY").unwrap_or_default(),
        rates: vec![500],
        concurrency: vec![1, 10, 50],
        seconds: 10,
        label: String::new(),
        upstream_cpu: None,
    };
    let mut iter = std::env::args().skip(1);
    while let Some(flag) = iter.next() {
        let mut value = || iter.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--proxy" => {
                args.proxy = value()?
                    .parse()
                    .map_err(|_| "--proxy takes HOST:PORT (an IP address)")?
            }
            "--api-key" => args.api_key = value()?,
            "--rates" => args.rates = parse_list(&flag, &value()?)?,
            "--concurrency" => args.concurrency = parse_list(&flag, &value()?)?,
            "--seconds" => {
                args.seconds = value()?.parse().map_err(|_| "--seconds takes a number")?
            }
            "--label" => args.label = value()?,
            "--upstream-cpu" => {
                args.upstream_cpu = Some(
                    value()?
                        .parse()
                        .map_err(|_| "--upstream-cpu takes a CPU number")?,
                )
            }
            // cargo bench passes --bench to every bench target.
            "--bench" => {}
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if args.api_key.is_empty() {
        return Err("--api-key (or HANDOFFRAIL_API_KEY) is required".into());
    }
    Ok(args)
}

/// What the upstream answers: a 1.8 KB JSON order, the size DESIGN.md's proxy budget is stated for.
fn order_document() -> Bytes {
    let lines: Vec<_> = (0..19)
        .map(|n| {
            json!({
                "sku": format!("SKU-{n:05}"),
                "name": format!("Replacement part number {n}"),
                "quantity": n + 1,
                "unit_price": 19.99 + n as f64,
            })
        })
        .collect();
    let document = json!({
        "order_id": "ord_8d1f2c",
        "status": "shipped",
        "customer": {"id": "cus_42", "tier": "gold"},
        "total": 1234.56,
        "lines": lines,
    });
    Bytes::from(document.to_string())
}

/// Moves the calling thread to one CPU.
fn pin_this_thread(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET and sched_setaffinity only touch `set`.
    let pinned = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if pinned != 0 {
        eprintln!(
            "# upstream stays where it was: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Serves `body` to every request on its own single-threaded runtime (on `cpu` when given); returns the
/// address.
fn spawn_upstream(body: Bytes, cpu: Option<usize>) -> SocketAddr {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        if let Some(cpu) = cpu {
            pin_this_thread(cpu);
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("upstream runtime");
        runtime.block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let _ = sender.send(listener.local_addr().expect("address"));
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let body = body.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request: Request<_>| {
                        let body = body.clone();
                        async move {
                            // Read the request body, as a real API does.
                            let _ = BodyExt::collect(request.into_body()).await;
                            Ok::<_, std::convert::Infallible>(
                                Response::builder()
                                    .header("content-type", "application/json")
                                    .body(Full::new(body))
                                    .expect("response"),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    receiver.recv().expect("upstream address")
}

/// How requests reach the upstream.
#[derive(Clone)]
struct Target {
    /// Where the TCP connection goes: the upstream itself, or the proxy.
    connect: SocketAddr,
    upstream: SocketAddr,
    /// `Proxy-Authorization` when going through the proxy.
    proxy_authorization: Option<String>,
}

impl Target {
    fn request(&self, sequence: u64) -> Request<Empty<Bytes>> {
        let path = format!("/orders/{sequence}");
        let builder = match &self.proxy_authorization {
            // Absolute form, as an HTTP client configured with HTTP_PROXY sends it.
            Some(credentials) => Request::get(format!("http://{}{path}", self.upstream))
                .header("proxy-authorization", credentials)
                .header("x-handoffrail-run", "proxy-bench")
                .header("x-handoffrail-action", "get_order"),
            None => Request::get(path),
        };
        builder
            .header("host", self.upstream.to_string())
            .header("accept", "application/json")
            .body(Empty::new())
            .expect("request")
    }

    async fn connect(&self) -> Result<SendRequest<Empty<Bytes>>, String> {
        let stream = TcpStream::connect(self.connect)
            .await
            .map_err(|error| format!("connect {}: {error}", self.connect))?;
        let _ = stream.set_nodelay(true);
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|error| error.to_string())?;
        tokio::spawn(connection);
        Ok(sender)
    }
}

/// Sends one request on `sender`, reads the whole body and checks what came back.
async fn exchange(
    sender: &mut SendRequest<Empty<Bytes>>,
    target: &Target,
    sequence: u64,
    expected_length: usize,
) -> Result<(), String> {
    sender.ready().await.map_err(|error| error.to_string())?;
    let response = sender
        .send_request(target.request(sequence))
        .await
        .map_err(|error| error.to_string())?;
    let status = response.status();
    let recorded = response.headers().contains_key("x-handoffrail-record");
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|error| error.to_string())?
        .to_bytes();
    if !status.is_success() {
        return Err(format!(
            "status {status}: {}",
            String::from_utf8_lossy(&body)
        ));
    }
    if body.len() != expected_length {
        return Err(format!("body of {} bytes", body.len()));
    }
    if target.proxy_authorization.is_some() && !recorded {
        return Err("no X-HandoffRail-Record header".into());
    }
    Ok(())
}

#[derive(Default)]
struct Samples {
    latencies: Vec<Duration>,
    errors: u64,
    first_error: Option<String>,
}

impl Samples {
    fn add(&mut self, result: Result<Duration, String>) {
        match result {
            Ok(latency) => self.latencies.push(latency),
            Err(error) => {
                self.errors += 1;
                self.first_error.get_or_insert(error);
            }
        }
    }

    fn merge(&mut self, other: Samples) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

struct Level {
    answered: usize,
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
}

fn summarise(mut samples: Samples, elapsed: Duration) -> Level {
    samples.latencies.sort_unstable();
    if let Some(error) = &samples.first_error {
        eprintln!("# first error: {error}");
    }
    Level {
        answered: samples.latencies.len(),
        per_second: samples.latencies.len() as f64 / elapsed.as_secs_f64(),
        p50_ms: percentile(&samples.latencies, 0.50),
        p99_ms: percentile(&samples.latencies, 0.99),
        errors: samples.errors,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index].as_secs_f64() * 1000.0
}

/// Closed loop: `concurrency` connections, each sending its next request when the last one is answered.
async fn at_concurrency(
    target: &Target,
    concurrency: usize,
    seconds: u64,
    body_length: usize,
) -> Level {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|worker| {
            let target = target.clone();
            tokio::spawn(async move {
                let mut samples = Samples::default();
                let mut sender = match target.connect().await {
                    Ok(sender) => sender,
                    Err(error) => {
                        samples.add(Err(error));
                        return samples;
                    }
                };
                let mut sequence = (worker as u64) << 32;
                while Instant::now() < deadline {
                    sequence += 1;
                    let sent = Instant::now();
                    let result = exchange(&mut sender, &target, sequence, body_length).await;
                    let failed = result.is_err();
                    samples.add(result.map(|()| sent.elapsed()));
                    if failed {
                        match target.connect().await {
                            Ok(fresh) => sender = fresh,
                            Err(_) => return samples,
                        }
                    }
                }
                samples
            })
        })
        .collect();
    let mut samples = Samples::default();
    for worker in workers {
        if let Ok(done) = worker.await {
            samples.merge(done);
        }
    }
    summarise(samples, started.elapsed())
}

/// Open loop: one request every 1/rate s whatever the answers do, each on an idle kept-alive connection (a new
/// one when none is idle). Latency runs from the moment a request is sent.
async fn at_rate(target: &Target, rate: u64, seconds: u64, body_length: usize) -> Level {
    let idle: Arc<Mutex<Vec<SendRequest<Empty<Bytes>>>>> = Arc::default();
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let total = rate * seconds;
    let started = Instant::now();
    let mut requests = Vec::with_capacity(total as usize);
    for sequence in 0..total {
        tokio::time::sleep_until((started + interval * sequence as u32).into()).await;
        let target = target.clone();
        let idle = idle.clone();
        requests.push(tokio::spawn(async move {
            let pooled = idle.lock().map(|mut idle| idle.pop()).unwrap_or(None);
            let sent = Instant::now();
            let mut sender = match pooled {
                Some(sender) => sender,
                None => target.connect().await?,
            };
            exchange(&mut sender, &target, sequence, body_length).await?;
            let latency = sent.elapsed();
            if let Ok(mut idle) = idle.lock() {
                idle.push(sender);
            }
            Ok::<_, String>(latency)
        }));
    }
    let mut samples = Samples::default();
    for request in requests {
        match request.await {
            Ok(result) => samples.add(result),
            Err(error) => samples.add(Err(error.to_string())),
        }
    }
    summarise(samples, started.elapsed())
}

fn row(label: &str, load: &str, level: &Level) {
    println!(
        "| {label} | {load} | {:.0} | {:.3} | {:.3} | {} |",
        level.per_second, level.p50_ms, level.p99_ms, level.errors
    );
}

fn added(load: &str, direct: &Level, proxied: &Level) {
    println!(
        "# added by the proxy at {load}: p50 {:+.3} ms, p99 {:+.3} ms",
        proxied.p50_ms - direct.p50_ms,
        proxied.p99_ms - direct.p99_ms
    );
}

async fn run(args: Args) {
    let body = order_document();
    let body_length = body.len();
    let upstream = spawn_upstream(body, args.upstream_cpu);
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("proxy-bench:{}", args.api_key));
    let direct = Target {
        connect: upstream,
        upstream,
        proxy_authorization: None,
    };
    let proxied = Target {
        connect: args.proxy,
        upstream,
        proxy_authorization: Some(format!("Basic {credentials}")),
    };
    let label = if args.label.is_empty() {
        "proxy".to_string()
    } else {
        args.label.clone()
    };
    eprintln!("# upstream body {body_length} bytes");
    // Warm both legs: connections, key cache, trust cache, the upstream pool inside the proxy.
    at_concurrency(&direct, 4, 1, body_length).await;
    let mut answered = at_concurrency(&proxied, 4, 1, body_length).await.answered;

    println!("| run | load | per second | p50 ms | p99 ms | errors |");
    println!("|---|---|---|---|---|---|");
    for &concurrency in &args.concurrency {
        let load = format!("concurrency {concurrency}");
        let plain = at_concurrency(&direct, concurrency, args.seconds, body_length).await;
        row("direct", &load, &plain);
        let through = at_concurrency(&proxied, concurrency, args.seconds, body_length).await;
        row(&label, &load, &through);
        added(&load, &plain, &through);
        answered += through.answered;
    }
    for &rate in &args.rates {
        let load = format!("{rate} req/s");
        let plain = at_rate(&direct, rate, args.seconds, body_length).await;
        row("direct", &load, &plain);
        let through = at_rate(&proxied, rate, args.seconds, body_length).await;
        row(&label, &load, &through);
        added(&load, &plain, &through);
        answered += through.answered;
    }
    println!("# proxied requests answered: {answered}");
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(64);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(args));
}
