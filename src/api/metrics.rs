//! Prometheus metrics: request count and latency by route template, packets created, claims, and the
//! proxy's recorder (records queued, written, lost; queue depth).
//! A small registry behind short-held locks; rendering is text format 0.0.4.

use crate::intercept::recorder::RecorderStats;
use crate::packets::verification::{Policy, Verification};
use crate::webhooks::dispatch::DeliveryTally;
use crate::webhooks::store::DeliveryFigures;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct Latency {
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<(String, String), Latency>>,
    packets_created: Mutex<BTreeMap<String, u64>>,
    /// Verified handoffs by outcome and the policy applied (`none` on PASS).
    verified_handoffs: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    claims_won: AtomicU64,
    claims_refused: AtomicU64,
    /// The proxy's recorder, when this process runs one.
    recorder: OnceLock<Arc<RecorderStats>>,
}

/// What a claim attempt came to, for `handoffrail_claims_total`.
pub enum ClaimOutcome {
    Won,
    Refused,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding a metrics lock leaves plain counters behind; keep counting.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Metrics {
    pub fn observe_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        *lock(&self.requests)
            .entry((method.to_string(), route.to_string(), status))
            .or_default() += 1;
        let mut latency = lock(&self.latency);
        let entry = latency
            .entry((method.to_string(), route.to_string()))
            .or_default();
        entry.count += 1;
        entry.sum += seconds;
        for (bucket, bound) in entry.buckets.iter_mut().zip(LATENCY_BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
    }

    pub fn packet_created(&self, tenant: &str) {
        *lock(&self.packets_created)
            .entry(tenant.to_string())
            .or_default() += 1;
    }

    /// A verified handoff's verdict: its outcome and the policy applied (created, held or refused).
    pub fn verified_handoff(&self, verification: &Verification) {
        let policy = Policy::name(verification.policy);
        *lock(&self.verified_handoffs)
            .entry((verification.outcome.as_str(), policy))
            .or_default() += 1;
    }

    pub fn claim(&self, outcome: ClaimOutcome) {
        let counter = match outcome {
            ClaimOutcome::Won => &self.claims_won,
            ClaimOutcome::Refused => &self.claims_refused,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn watch_recorder(&self, stats: Arc<RecorderStats>) {
        let _ = self.recorder.set(stats);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP handoffrail_requests_total HTTP requests by method, route template and status.\n");
        out.push_str("# TYPE handoffrail_requests_total counter\n");
        for ((method, route, status), count) in lock(&self.requests).iter() {
            let _ = writeln!(
                out,
                "handoffrail_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {count}",
                escape(route)
            );
        }
        out.push_str(
            "# HELP handoffrail_request_duration_seconds HTTP request latency by route template.\n",
        );
        out.push_str("# TYPE handoffrail_request_duration_seconds histogram\n");
        for ((method, route), latency) in lock(&self.latency).iter() {
            let labels = format!("method=\"{method}\",route=\"{}\"", escape(route));
            for (bound, count) in LATENCY_BUCKETS.iter().zip(latency.buckets) {
                let _ = writeln!(out, "handoffrail_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}");
            }
            let _ = writeln!(
                out,
                "handoffrail_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                latency.count
            );
            let _ = writeln!(
                out,
                "handoffrail_request_duration_seconds_sum{{{labels}}} {}",
                latency.sum
            );
            let _ = writeln!(
                out,
                "handoffrail_request_duration_seconds_count{{{labels}}} {}",
                latency.count
            );
        }
        out.push_str("# HELP handoffrail_packets_created_total Packets created, by tenant.\n");
        out.push_str("# TYPE handoffrail_packets_created_total counter\n");
        for (tenant, count) in lock(&self.packets_created).iter() {
            let _ = writeln!(
                out,
                "handoffrail_packets_created_total{{tenant_id=\"{}\"}} {count}",
                escape(tenant)
            );
        }
        out.push_str("# HELP handoffrail_verified_handoffs_total Packets sent with claims, by the claims' outcome and the policy applied.\n");
        out.push_str("# TYPE handoffrail_verified_handoffs_total counter\n");
        for ((outcome, policy), count) in lock(&self.verified_handoffs).iter() {
            let _ = writeln!(
                out,
                "handoffrail_verified_handoffs_total{{outcome=\"{outcome}\",policy=\"{policy}\"}} {count}"
            );
        }
        out.push_str("# HELP handoffrail_claims_total Claim attempts by outcome.\n");
        out.push_str("# TYPE handoffrail_claims_total counter\n");
        let _ = writeln!(
            out,
            "handoffrail_claims_total{{outcome=\"won\"}} {}",
            self.claims_won.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "handoffrail_claims_total{{outcome=\"refused\"}} {}",
            self.claims_refused.load(Ordering::Relaxed)
        );
        if let Some(recorder) = self.recorder.get() {
            let counts = recorder.counts();
            out.push_str("# HELP handoffrail_proxy_records_total Proxied exchanges handed to the recorder, committed to the database, spooled to disk while the database was down (and later replayed to it), and lost (never silently: each is logged, and its exchange is not acknowledged).\n");
            out.push_str("# TYPE handoffrail_proxy_records_total counter\n");
            for (state, count) in [
                ("queued", counts.queued),
                ("written", counts.written),
                ("spooled", counts.spooled),
                ("replayed", counts.replayed),
                ("lost", counts.lost),
            ] {
                let _ = writeln!(
                    out,
                    "handoffrail_proxy_records_total{{state=\"{state}\"}} {count}"
                );
            }
            out.push_str("# HELP handoffrail_proxy_record_queue_depth Records in flight or waiting to be written.\n");
            out.push_str("# TYPE handoffrail_proxy_record_queue_depth gauge\n");
            let _ = writeln!(
                out,
                "handoffrail_proxy_record_queue_depth {}",
                counts.depth()
            );
            let (wait_seconds, waited) = recorder.durable_wait();
            out.push_str("# HELP handoffrail_proxy_record_durable_seconds Time from an exchange's end to its record being durable (committed or spooled); the response completes only then.\n");
            out.push_str("# TYPE handoffrail_proxy_record_durable_seconds summary\n");
            let _ = writeln!(
                out,
                "handoffrail_proxy_record_durable_seconds_sum {wait_seconds}"
            );
            let _ = writeln!(
                out,
                "handoffrail_proxy_record_durable_seconds_count {waited}"
            );
            out.push_str("# HELP handoffrail_proxy_record_lag_seconds Age of the oldest record not yet in the database (in a batch being written, or spooled); 0 when every record is in.\n");
            out.push_str("# TYPE handoffrail_proxy_record_lag_seconds gauge\n");
            let _ = writeln!(
                out,
                "handoffrail_proxy_record_lag_seconds {}",
                recorder.lag_seconds()
            );
        }
        out
    }
}

/// Webhook delivery figures: attempts by result since start, and the outbox as the database holds it now
/// (`figures`, when the database answered).
pub fn render_webhooks(out: &mut String, tally: &DeliveryTally, figures: Option<&DeliveryFigures>) {
    out.push_str("# HELP handoffrail_webhook_deliveries_total Webhook delivery attempts by result since start.\n");
    out.push_str("# TYPE handoffrail_webhook_deliveries_total counter\n");
    for (result, counter) in [
        ("delivered", &tally.delivered),
        ("failed", &tally.failed),
        ("dead_letter", &tally.dead_lettered),
        ("gone", &tally.gone),
    ] {
        let _ = writeln!(
            out,
            "handoffrail_webhook_deliveries_total{{result=\"{result}\"}} {}",
            counter.load(Ordering::Relaxed)
        );
    }
    let Some(figures) = figures else {
        return;
    };
    for (name, help, value) in [
        (
            "handoffrail_webhook_outbox_depth",
            "Deliveries waiting to be sent or retried.",
            figures.outbox_depth as f64,
        ),
        (
            "handoffrail_webhook_dlq_size",
            "Dead letters.",
            figures.dead_letters as f64,
        ),
        (
            "handoffrail_webhook_oldest_pending_age_seconds",
            "Age of the oldest delivery still waiting (0 when none).",
            figures.oldest_pending_age_seconds.unwrap_or(0.0),
        ),
        (
            "handoffrail_webhooks_active",
            "Active webhooks.",
            figures.active_webhooks as f64,
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
        );
    }
}

/// Open live connections (`/ws` and `/events`) on this instance.
pub fn render_live(out: &mut String, connections: usize) {
    out.push_str("# HELP handoffrail_live_connections Open live connections (/ws and /events) on this instance.\n");
    out.push_str("# TYPE handoffrail_live_connections gauge\n");
    let _ = writeln!(out, "handoffrail_live_connections {connections}");
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Middleware: times every request and labels it with its route template (never the raw path, whose ids
/// would make the label set unbounded).
pub async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let response = next.run(request).await;
    if route != "/metrics" {
        metrics.observe_request(
            &method,
            &route,
            response.status().as_u16(),
            started.elapsed().as_secs_f64(),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let metrics = Metrics::default();
        metrics.observe_request("GET", "/api/v1/packets/{packet_id}", 200, 0.003);
        metrics.observe_request("GET", "/api/v1/packets/{packet_id}", 404, 0.2);
        metrics.packet_created("default");
        metrics.claim(ClaimOutcome::Won);
        let text = metrics.render();
        assert!(text.contains(
            "handoffrail_requests_total{method=\"GET\",route=\"/api/v1/packets/{packet_id}\",status=\"200\"} 1"
        ));
        assert!(text.contains("le=\"0.005\"} 1"));
        assert!(text.contains("le=\"0.25\"} 2"));
        assert!(text.contains("le=\"+Inf\"} 2"));
        assert!(text.contains("handoffrail_packets_created_total{tenant_id=\"default\"} 1"));
        assert!(text.contains("handoffrail_claims_total{outcome=\"won\"} 1"));
    }
}
