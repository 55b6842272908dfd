//! Load generator for the packet and evaluation APIs: runs create → claim → in_progress → complete lifecycles,
//! single operations, or whole evaluation requests (`--mode evaluate`: 10 mixed claims against a stored 20 KB
//! record, by id and by run + action, each verdict stored; `--mode verified-create`: creates carrying five of those
//! claims) against a running server at a fixed concurrency and reports throughput and latency.
//!
//! `scripts/load-lifecycle.sh` starts the server pinned to one core and runs this on the other; by hand:
//!
//!     cargo bench --bench lifecycle -- --url http://127.0.0.1:8080/api/v1 --api-key hr_… \
//!         --concurrency 1,10,50 --seconds 10 --mode lifecycle

use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Four requests per iteration; one sample = the whole lifecycle.
    Lifecycle,
    /// One create per iteration.
    Create,
    /// `GET /packets?limit=50` per iteration.
    List,
    /// `POST /evaluations` with ten claims per iteration.
    Evaluate,
    /// One verified create per iteration: the packet of `create` with five claims over the 20 KB record.
    VerifiedCreate,
}

struct Args {
    url: String,
    api_key: String,
    concurrency: Vec<usize>,
    seconds: u64,
    mode: Mode,
    label: String,
    /// Packets to create before measuring (for `list`, so the table has a known size).
    seed: usize,
    /// Only seed, measure nothing.
    seed_only: bool,
    /// The evaluation payload (`--mode evaluate`), made once its evidence is imported.
    evaluation: Value,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        url: "http://127.0.0.1:8080/api/v1".into(),
        api_key: std::env::var("HANDOFFRAIL_API_KEY").unwrap_or_default(),
        concurrency: vec![1, 10, 50],
        seconds: 10,
        mode: Mode::Lifecycle,
        label: String::new(),
        seed: 0,
        seed_only: false,
        evaluation: Value::Null,
    };
    let mut iter = std::env::args().skip(1);
    while let Some(flag) = iter.next() {
        let mut value = || iter.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => args.url = value()?,
            "--api-key" => args.api_key = value()?,
            "--seconds" => {
                args.seconds = value()?.parse().map_err(|_| "--seconds takes a number")?
            }
            "--label" => args.label = value()?,
            "--seed" => args.seed = value()?.parse().map_err(|_| "--seed takes a number")?,
            "--concurrency" => {
                args.concurrency = value()?
                    .split(',')
                    .map(|n| {
                        n.trim()
                            .parse::<usize>()
                            .map_err(|_| format!("bad concurrency {n}"))
                    })
                    .collect::<Result<_, _>>()?
            }
            "--mode" => {
                args.mode = match value()?.as_str() {
                    "lifecycle" => Mode::Lifecycle,
                    "create" => Mode::Create,
                    "list" => Mode::List,
                    "evaluate" => Mode::Evaluate,
                    "verified-create" => Mode::VerifiedCreate,
                    other => return Err(format!("unknown mode {other}")),
                }
            }
            "--seed-only" => args.seed_only = true,
            "--bench" => {}
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if args.api_key.is_empty() {
        return Err("--api-key (or HANDOFFRAIL_API_KEY) is required".into());
    }
    Ok(args)
}

fn packet(worker: usize, iteration: u64) -> Value {
    // The shape of the reference benchmark's SAMPLE_PACKET: one turn, one decision, one tag.
    json!({
        "metadata": {
            "source_agent": {"id": "bench-source", "name": "Bench Source", "framework": "bench"},
            "target_agent": {"id": format!("bench-target-{worker}"), "name": "Bench Target"},
            "priority": "normal", "tags": ["benchmark"]
        },
        "context": {
            "summary": format!("Benchmark packet {worker}/{iteration}"),
            "conversation_state": [{"role": "user", "content": "Please process my order"}]
        },
        "decisions": [{"id": "d1", "decision": "route to fulfilment", "rationale": "in stock", "timestamp": 1763716472.5}]
    })
}

async fn send(
    client: &reqwest::Client,
    request: reqwest::RequestBuilder,
    expected: u16,
) -> Result<Value, String> {
    let _ = client;
    let response = request.send().await.map_err(|error| error.to_string())?;
    let status = response.status().as_u16();
    let body = response.bytes().await.map_err(|error| error.to_string())?;
    if status != expected {
        return Err(format!(
            "status {status}: {}",
            String::from_utf8_lossy(&body)
        ));
    }
    serde_json::from_slice(&body).map_err(|error| error.to_string())
}

async fn iteration(
    client: &reqwest::Client,
    args: &Args,
    worker: usize,
    n: u64,
) -> Result<(), String> {
    let url = &args.url;
    let key = args.api_key.as_str();
    match args.mode {
        Mode::Evaluate => {
            let verdict = send(
                client,
                client
                    .post(format!("{url}/evaluations"))
                    .header("X-API-Key", key)
                    .json(&args.evaluation),
                201,
            )
            .await?;
            if verdict["outcome"] != "PASS" {
                let mut shown = verdict.to_string();
                shown.truncate(400);
                return Err(format!("expected PASS: {shown}"));
            }
        }
        Mode::List => {
            send(
                client,
                client
                    .get(format!("{url}/packets?limit=50"))
                    .header("X-API-Key", key),
                200,
            )
            .await?;
        }
        Mode::VerifiedCreate => {
            let mut body = packet(worker, n);
            body["verification"] = args.evaluation.clone();
            let created = send(
                client,
                client
                    .post(format!("{url}/packets"))
                    .header("X-API-Key", key)
                    .json(&body),
                201,
            )
            .await?;
            if created["verification"]["outcome"] != "PASS" {
                let mut shown = created["verification"].to_string();
                shown.truncate(400);
                return Err(format!("expected PASS: {shown}"));
            }
        }
        Mode::Create | Mode::Lifecycle => {
            let created = send(
                client,
                client
                    .post(format!("{url}/packets"))
                    .header("X-API-Key", key)
                    .json(&packet(worker, n)),
                201,
            )
            .await?;
            if args.mode == Mode::Create {
                return Ok(());
            }
            let id = created["id"]
                .as_str()
                .ok_or("create returned no id")?
                .to_string();
            let claim =
                json!({"agent_id": format!("bench-target-{worker}"), "agent_name": "Bench Target"});
            send(
                client,
                client
                    .post(format!("{url}/packets/{id}/claim"))
                    .header("X-API-Key", key)
                    .json(&claim),
                200,
            )
            .await?;
            for status in ["in_progress", "completed"] {
                let body = json!({"status": status});
                send(
                    client,
                    client
                        .patch(format!("{url}/packets/{id}"))
                        .header("X-API-Key", key)
                        .json(&body),
                    200,
                )
                .await?;
            }
        }
    }
    Ok(())
}

struct Outcome {
    samples: Vec<Duration>,
    errors: usize,
    first_error: Option<String>,
    elapsed: Duration,
}

async fn run_level(args: Arc<Args>, concurrency: usize) -> Outcome {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .expect("http client");
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..concurrency {
        let (client, args) = (client.clone(), args.clone());
        workers.push(tokio::spawn(async move {
            let (mut samples, mut errors, mut first_error) = (Vec::new(), 0usize, None);
            let mut n = 0u64;
            while Instant::now() < deadline {
                let begun = Instant::now();
                match iteration(&client, &args, worker, n).await {
                    Ok(()) => samples.push(begun.elapsed()),
                    Err(error) => {
                        errors += 1;
                        first_error.get_or_insert(error);
                    }
                }
                n += 1;
            }
            (samples, errors, first_error)
        }));
    }
    let mut outcome = Outcome {
        samples: Vec::new(),
        errors: 0,
        first_error: None,
        elapsed: Duration::ZERO,
    };
    for worker in workers {
        if let Ok((samples, errors, first_error)) = worker.await {
            outcome.samples.extend(samples);
            outcome.errors += errors;
            if outcome.first_error.is_none() {
                outcome.first_error = first_error;
            }
        }
    }
    outcome.elapsed = started.elapsed();
    outcome
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

/// Creates `args.seed` packets, ten at a time.
async fn seed(args: &Args) {
    let client = reqwest::Client::new();
    let per_worker = args.seed.div_ceil(10);
    let mut workers = Vec::new();
    for worker in 0..10 {
        let (client, url, key) = (client.clone(), args.url.clone(), args.api_key.clone());
        workers.push(tokio::spawn(async move {
            for n in 0..per_worker as u64 {
                let request = client
                    .post(format!("{url}/packets"))
                    .header("X-API-Key", &key)
                    .json(&packet(worker, n));
                if let Err(error) = send(&client, request, 201).await {
                    eprintln!("seeding failed: {error}");
                    return;
                }
            }
        }));
    }
    for worker in workers {
        let _ = worker.await;
    }
    eprintln!("seeded {} packets", per_worker * 10);
}

/// An order with 200 line items (about 20 KB of JSON), as an upstream API would answer.
fn order_document() -> Value {
    let items: Vec<Value> = (0..200)
        .map(|n| json!({"sku": format!("SKU-{n}"), "qty": 1 + n % 5, "price": format!("{}.{:02}", 3 + n % 40, n % 100), "description": "a line item with some descriptive text"}))
        .collect();
    json!({"order": {"id": 7, "status": "shipped", "total": 1234.56, "currency": "EUR", "items": items}})
}

/// Imports the evidence and returns the payload every iteration posts: ten claims, half by record id and half
/// by run + action, across the four modes.
async fn prepare_evaluation(args: &Args) -> Result<Value, String> {
    let client = reqwest::Client::new();
    let har = json!({"log": {"version": "1.2", "creator": {"name": "bench", "version": "1"}, "entries": [{
        "startedDateTime": "2026-11-21T10:00:00Z", "time": 12,
        "request": {"method": "GET", "url": "https://api.example.com/v1/orders/7"},
        "response": {"status": 200, "content": {"mimeType": "application/json", "text": order_document().to_string()}},
        "_handoffrail": {"run_id": "bench-run", "agent_id": "bench-agent", "action": "get_order"}}]}});
    let imported = send(
        &client,
        client
            .post(format!("{}/records", args.url))
            .header("X-API-Key", &args.api_key)
            .json(&har),
        201,
    )
    .await?;
    let id = imported["ids"][0].as_str().ok_or("import returned no id")?;
    let claim = |mode: &str, path: &str, by_id: bool| {
        let mut claim =
            json!({"action_name": "get_order", "verification_mode": mode, "json_path": path});
        if by_id {
            claim["record_id"] = json!(id);
        }
        claim
    };
    let mut claims = Vec::new();
    for by_id in [true, false] {
        let mut exact = claim("exact", "$.order.status", by_id);
        exact["claimed_value"] = json!("shipped");
        let mut total = claim("field_extraction", "$.order.total", by_id);
        total["claimed_value"] = json!("1234.560");
        let mut range = claim("range_threshold", "$.order.items[*].qty", by_id);
        range["range_min"] = json!(1);
        range["range_max"] = json!(5);
        range["aggregate"] = json!("each");
        let presence = claim("presence", "$.order.items[?@.sku=='SKU-150']", by_id);
        let mut filtered = claim("exact", "$.order.items[?@.sku=='SKU-42'].qty", by_id);
        filtered["claimed_value"] = json!(3);
        claims.extend([exact, total, range, presence, filtered]);
    }
    Ok(json!({"run_id": "bench-run", "agent_id": "bench-agent", "claims": claims}))
}

#[tokio::main]
async fn main() {
    let mut args = match parse_args() {
        Ok(args) => args,
        Err(error) => {
            eprintln!("usage error: {error}");
            std::process::exit(64);
        }
    };
    if matches!(args.mode, Mode::Evaluate | Mode::VerifiedCreate) {
        match prepare_evaluation(&args).await {
            // A verified create carries five of the ten claims: by record id, one per mode and a filter.
            Ok(mut payload) if args.mode == Mode::VerifiedCreate => {
                if let Some(claims) = payload["claims"].as_array_mut() {
                    claims.truncate(5);
                }
                args.evaluation = payload;
            }
            Ok(payload) => args.evaluation = payload,
            Err(error) => {
                eprintln!("preparing the evaluation failed: {error}");
                std::process::exit(1);
            }
        }
    }
    let args = Arc::new(args);
    let unit = match args.mode {
        Mode::Lifecycle => "lifecycles/s",
        Mode::Create => "creates/s",
        Mode::List => "lists/s",
        Mode::Evaluate => "evaluations/s",
        Mode::VerifiedCreate => "verified creates/s",
    };
    if args.seed > 0 {
        seed(&args).await;
    }
    if args.seed_only {
        return;
    }
    println!("| run | concurrency | {unit} | p50 ms | p99 ms | errors |");
    println!("|---|---|---|---|---|---|");
    for &concurrency in &args.concurrency {
        let mut outcome = run_level(args.clone(), concurrency).await;
        outcome.samples.sort();
        let rate = outcome.samples.len() as f64 / outcome.elapsed.as_secs_f64();
        println!(
            "| {} | {concurrency} | {rate:.0} | {:.2} | {:.2} | {} |",
            args.label,
            percentile(&outcome.samples, 0.50),
            percentile(&outcome.samples, 0.99),
            outcome.errors
        );
        if let Some(error) = outcome.first_error {
            eprintln!("first error at concurrency {concurrency}: {error}");
        }
    }
}
