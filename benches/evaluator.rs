//! The evaluator's cost, in memory (DESIGN.md budgets: ≥ 300,000 mixed claims/s over a parsed 100 KB
//! document; < 2 µs per simple claim; 1,000 field claims over a 100 KB record in < 5 ms).
//!
//!     cargo bench --bench evaluator

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use handoffrail::verify::{evaluate, Evidence, EvidenceRef, Payload};
use serde_json::{json, Value};

/// A ~100 KB order-history document, shaped like a typical REST API response.
fn document() -> Value {
    let orders: Vec<Value> = (0..520)
        .map(|n| {
            json!({
                "id": n, "status": if n % 3 == 0 { "shipped" } else { "pending" },
                "total": format!("{}.{:02}", 10 + n, n % 100).parse::<f64>().unwrap_or(0.0),
                "customer": {"name": format!("Customer {n}"), "tier": "business", "email": format!("c{n}@example.com")},
                "items": [{"sku": format!("SKU-{n}-A"), "qty": 1 + n % 4}, {"sku": format!("SKU-{n}-B"), "qty": 2}]
            })
        })
        .collect();
    let document = json!({"orders": orders, "page": {"size": 520, "next": null}});
    let text = document.to_string();
    assert!(
        (90_000..140_000).contains(&text.len()),
        "document is {} bytes",
        text.len()
    );
    serde_json::from_str(&text).unwrap_or(document)
}

fn payload(claims: Vec<Value>) -> Payload {
    Payload::parse(&json!({"run_id": "bench", "claims": claims}))
        .unwrap_or_else(|error| panic!("{error:?}"))
}

fn field_claims(count: usize) -> Vec<Value> {
    (0..count)
        .map(|n| {
            let order = n % 400;
            json!({"action_name": "list_orders", "verification_mode": "field_extraction", "record_id": "r",
                   "json_path": format!("$.orders[{order}].customer.name"), "claimed_value": format!("Customer {order}")})
        })
        .collect()
}

fn mixed_claims(count: usize) -> Vec<Value> {
    (0..count)
        .map(|n| {
            let order = n % 400;
            if n % 2 == 0 {
                json!({"action_name": "list_orders", "verification_mode": "field_extraction", "record_id": "r",
                       "json_path": format!("$.orders[{order}].id"), "claimed_value": order.to_string()})
            } else {
                json!({"action_name": "list_orders", "verification_mode": "range_threshold", "record_id": "r",
                       "json_path": format!("$.orders[{order}].total"), "range_min": 0, "range_max": 1000})
            }
        })
        .collect()
}

fn per_mode() -> Vec<(&'static str, Value)> {
    vec![
        (
            "field_extraction",
            json!({"verification_mode": "field_extraction", "json_path": "$.orders[7].status", "claimed_value": "pending"}),
        ),
        (
            "exact",
            json!({"verification_mode": "exact", "json_path": "$.orders[7].total", "claimed_value": 17.07}),
        ),
        (
            "range_threshold",
            json!({"verification_mode": "range_threshold", "json_path": "$.orders[7].items[*].qty", "range_min": 1, "range_max": 5}),
        ),
        (
            "presence",
            json!({"verification_mode": "presence", "json_path": "$.orders[7].customer.email"}),
        ),
    ]
}

fn benches(c: &mut Criterion) {
    let document = document();
    let evidence = |_: EvidenceRef<'_>| Evidence::Json(&document);

    let thousand = payload(field_claims(1_000));
    let mut group = c.benchmark_group("evaluate");
    group.throughput(Throughput::Elements(1_000));
    group.bench_function("1000 field claims, 100 KB record (evaluate)", |b| {
        b.iter(|| evaluate(black_box(&thousand), evidence))
    });
    let raw = json!({"run_id": "bench", "claims": field_claims(1_000)});
    group.bench_function("1000 field claims, 100 KB record (parse + evaluate)", |b| {
        b.iter(|| {
            evaluate(
                &Payload::parse(black_box(&raw)).unwrap_or_else(|_| unreachable!()),
                evidence,
            )
        })
    });
    let mixed = payload(mixed_claims(1_000));
    group.bench_function("1000 mixed field/range claims, 100 KB record", |b| {
        b.iter(|| evaluate(black_box(&mixed), evidence))
    });
    group.finish();

    let mut group = c.benchmark_group("single claim");
    group.throughput(Throughput::Elements(1));
    for (mode, mut claim) in per_mode() {
        claim["action_name"] = json!("get_order");
        claim["record_id"] = json!("r");
        let single = payload(vec![claim.clone()]);
        group.bench_function(format!("{mode} (evaluate)"), |b| {
            b.iter(|| evaluate(black_box(&single), evidence))
        });
        let raw = json!({"claims": [claim]});
        group.bench_function(format!("{mode} (parse + evaluate)"), |b| {
            b.iter_batched(
                || raw.clone(),
                |raw| {
                    evaluate(
                        &Payload::parse(&raw).unwrap_or_else(|_| unreachable!()),
                        evidence,
                    )
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

/// Sealing and verifying a record with a 1.8 KB JSON response body (the proxy's reference payload size).
fn records(c: &mut Criterion) {
    use handoffrail::records::{Record, RecordKey};
    let body = serde_json::to_vec(&json!({"items": (0..40).map(|n| json!({"sku": format!("SKU-{n}"), "qty": n})).collect::<Vec<_>>()}))
        .unwrap_or_default();
    let mut record: Record =
        serde_json::from_str(include_str!("../fixtures/records/get-order.json"))
            .unwrap_or_else(|error| panic!("fixture: {error}"));
    record.response_body_size = body.len() as u64;
    record.response_body = body;
    let key = RecordKey::generate();
    let sealed = key.seal(record.clone());
    let mut group = c.benchmark_group("records");
    group.bench_function("canonical form + sha256, written directly", |b| {
        b.iter(|| handoffrail::records::canonical::digest(black_box(&record)))
    });
    group.bench_function(
        "canonical form, through a serde_json::Value tree (the reference)",
        |b| {
            b.iter(|| {
                let value = serde_json::to_value(black_box(&record)).unwrap_or_default();
                handoffrail::records::canonical::canonical_json(&value)
            })
        },
    );
    group.bench_function(
        "seal (canonical form + sha256 + ed25519 sign), 1.8 KB body",
        |b| {
            b.iter_batched(
                || record.clone(),
                |record| key.seal(record),
                BatchSize::SmallInput,
            )
        },
    );
    group.bench_function(
        "verify (canonical form + sha256 + ed25519 verify), 1.8 KB body",
        |b| b.iter(|| key.verify(black_box(&sealed))),
    );
    group.finish();
}

criterion_group!(evaluator, benches, records);
criterion_main!(evaluator);
