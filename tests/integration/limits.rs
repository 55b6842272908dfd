//! Tiers and rate limits (docs/api.md §5.4–5.5, docs/api.md decision 5): the sliding minute per key, the clock hour per tenant
//! sized by the key's tier, the daily create cap, the headers and 429s, configuration, and windows shared by
//! instances on one database.

use crate::on_both_backends;
use crate::support::{packet_body, postgres_url, spawn_app_with, AppOptions, Backend, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;

on_both_backends!(
    the_61st_request_in_a_minute_is_refused_with_headers,
    rbac_denials_are_neither_counted_nor_labelled,
    requests_without_a_valid_key_are_counted_by_address,
    the_hour_window_is_shared_by_the_tenant_and_sized_by_tier,
    a_free_tenant_gets_five_creates_a_day,
    concurrent_creates_never_pass_the_daily_cap,
    instances_share_the_daily_cap,
    limits_are_configurable_and_can_be_turned_off,
);

/// A server with rate limits on, changed by `configure`.
async fn limited_app(
    backend: Backend,
    configure: impl FnOnce(&mut handoffrail::config::ServeConfig) + Send + 'static,
) -> TestApp {
    spawn_app_with(
        backend,
        AppOptions {
            configure: Box::new(move |config| {
                config.limits.no_rate_limits = false;
                configure(config);
            }),
            ..Default::default()
        },
    )
    .await
}

/// Status, the four `X-RateLimit-*` headers and `Retry-After` (None when absent), and the body.
struct Limited {
    status: StatusCode,
    headers: [Option<String>; 5],
    body: Value,
}

impl Limited {
    fn number(&self, index: usize) -> u64 {
        self.headers[index]
            .as_deref()
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("header {index} is a number: {:?}", self.headers))
    }
    fn limit(&self) -> u64 {
        self.number(0)
    }
    fn remaining(&self) -> u64 {
        self.number(1)
    }
    fn reset(&self) -> u64 {
        self.number(2)
    }
    fn tier(&self) -> &str {
        self.headers[3].as_deref().unwrap_or("")
    }
    fn retry_after(&self) -> Option<u64> {
        self.headers[4]
            .as_deref()
            .map(|value| value.parse().expect("integer Retry-After"))
    }
}

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> Limited {
    let mut request = app.http.request(method, app.api(path));
    if let Some(key) = key {
        request = request.header("X-API-Key", key);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("sent");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|value| value.to_str().expect("ascii header").to_string())
    };
    let headers = [
        header("x-ratelimit-limit"),
        header("x-ratelimit-remaining"),
        header("x-ratelimit-reset"),
        header("x-ratelimit-tier"),
        header("retry-after"),
    ];
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    Limited {
        status,
        headers,
        body,
    }
}

async fn key_with(app: &TestApp, role: &str, tier: &str, tenant: &str) -> String {
    let reply = app
        .post(
            "/keys",
            json!({"name": format!("{tier} {role}"), "role": role, "tier": tier, "tenant_id": tenant}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    reply.body["key"].as_str().expect("plaintext").to_string()
}

async fn the_61st_request_in_a_minute_is_refused_with_headers(backend: Backend) {
    let app = limited_app(backend, |_| {}).await;
    let writer = key_with(&app, "writer", "business", "default").await;
    for n in 0..60u64 {
        let reply = call(&app, Method::GET, "/packets", Some(&writer), None).await;
        assert_eq!(reply.status, StatusCode::OK, "request {}", n + 1);
        assert_eq!(
            (
                reply.limit(),
                reply.remaining(),
                reply.reset(),
                reply.tier()
            ),
            (60, 59 - n, 60, "business"),
            "request {}",
            n + 1
        );
        assert_eq!(reply.retry_after(), None);
    }
    let refused = call(&app, Method::GET, "/packets", Some(&writer), None).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        refused.body,
        json!({"detail": "Rate limit exceeded", "field": "rate_limit"})
    );
    let wait = refused.retry_after().expect("Retry-After on a 429");
    assert!((1..=60).contains(&wait), "{wait}");
    assert_eq!(
        (
            refused.limit(),
            refused.remaining(),
            refused.reset(),
            refused.tier()
        ),
        (60, 0, wait, "business")
    );
    let again = call(&app, Method::GET, "/packets", Some(&writer), None).await;
    assert_eq!(
        again.status,
        StatusCode::TOO_MANY_REQUESTS,
        "refusals do not free the window"
    );

    let other = call(&app, Method::GET, "/packets", Some(&app.admin_key), None).await;
    assert_eq!(
        other.status,
        StatusCode::OK,
        "the window is the key's, not the tenant's"
    );
    let missing = call(
        &app,
        Method::GET,
        &format!("/packets/{}", uuid::Uuid::new_v4()),
        Some(&app.admin_key),
        None,
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(
        missing.headers[..4].iter().all(Option::is_some),
        "a 404 carries the headers"
    );
    let exempt = app.http.get(app.url("/health")).send().await.expect("sent");
    assert!(
        exempt.headers().get("x-ratelimit-limit").is_none(),
        "operational routes are not limited"
    );
}

async fn rbac_denials_are_neither_counted_nor_labelled(backend: Backend) {
    let app = limited_app(backend, |_| {}).await;
    let reader = key_with(&app, "reader", "business", "default").await;
    for _ in 0..70 {
        let denied = call(
            &app,
            Method::POST,
            "/packets",
            Some(&reader),
            Some(packet_body("a", "b", "x")),
        )
        .await;
        assert_eq!(denied.status, StatusCode::FORBIDDEN);
        assert!(
            denied.headers.iter().all(Option::is_none),
            "{:?}",
            denied.headers
        );
    }
    let allowed = call(&app, Method::GET, "/packets", Some(&reader), None).await;
    assert_eq!(allowed.status, StatusCode::OK);
    assert_eq!(allowed.remaining(), 59, "the 70 denials were not counted");
}

async fn requests_without_a_valid_key_are_counted_by_address(backend: Backend) {
    let app = limited_app(backend, |_| {}).await;
    for n in 0..60u64 {
        let key = (n % 2 == 0).then_some("hr_unknown");
        let reply = call(&app, Method::GET, "/packets", key, None).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            (reply.remaining(), reply.tier()),
            (59 - n, "free"),
            "a 401 is counted and labelled"
        );
    }
    let refused = call(&app, Method::GET, "/packets", None, None).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    let admin = call(&app, Method::GET, "/packets", Some(&app.admin_key), None).await;
    assert_eq!(
        admin.status,
        StatusCode::OK,
        "anonymous traffic does not use up a tenant's windows"
    );
}

async fn the_hour_window_is_shared_by_the_tenant_and_sized_by_tier(backend: Backend) {
    let app = limited_app(backend, |config| {
        config.limits.rate_limit_per_minute = 0;
        config.limits.rate_limit_per_hour =
            "free=5,pro=1000,business=10000".parse().expect("tiers");
    })
    .await;
    let first = key_with(&app, "reader", "free", "acme").await;
    let second = key_with(&app, "reader", "free", "acme").await;
    let pro = key_with(&app, "reader", "pro", "acme").await;
    let elsewhere = key_with(&app, "reader", "free", "globex").await;
    for n in 0..5u64 {
        let key = if n < 3 { &first } else { &second };
        let reply = call(&app, Method::GET, "/packets", Some(key), None).await;
        assert_eq!(reply.status, StatusCode::OK, "request {}", n + 1);
        assert_eq!(
            (reply.limit(), reply.remaining(), reply.tier()),
            (5, 4 - n, "free")
        );
        assert!(
            (1..=3600).contains(&reply.reset()),
            "seconds to the next clock hour"
        );
    }
    let refused = call(&app, Method::GET, "/packets", Some(&first), None).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    let wait = refused.retry_after().expect("Retry-After");
    assert!((1..=3600).contains(&wait));
    assert_eq!(
        (refused.limit(), refused.remaining(), refused.reset()),
        (5, 0, wait)
    );
    let also = call(&app, Method::GET, "/packets", Some(&second), None).await;
    assert_eq!(
        also.status,
        StatusCode::TOO_MANY_REQUESTS,
        "the hour is the tenant's"
    );

    let bigger = call(&app, Method::GET, "/packets", Some(&pro), None).await;
    assert_eq!(bigger.status, StatusCode::OK, "a pro key's limit is 1000");
    assert_eq!(
        (bigger.limit(), bigger.remaining(), bigger.tier()),
        (1000, 1000 - 8, "pro"),
        "refused requests count too"
    );
    let other = call(&app, Method::GET, "/packets", Some(&elsewhere), None).await;
    assert_eq!((other.status, other.remaining()), (StatusCode::OK, 4));
}

async fn a_free_tenant_gets_five_creates_a_day(backend: Backend) {
    let app = limited_app(backend, |_| {}).await;
    let free = key_with(&app, "writer", "free", "smallco").await;
    let business = key_with(&app, "writer", "business", "smallco").await;
    let create = |key: String, body: Value| {
        let app = &app;
        async move { call(app, Method::POST, "/packets", Some(&key), Some(body)).await }
    };
    let invalid = create(free.clone(), json!({"context": {}})).await;
    assert_eq!(
        invalid.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "an invalid create uses no slot"
    );
    let mut parent = String::new();
    for n in 0..4 {
        let reply = create(free.clone(), packet_body("a", "b", &format!("p{n}"))).await;
        assert_eq!(reply.status, StatusCode::CREATED, "create {n}");
        parent = reply.body["id"].as_str().expect("id").to_string();
    }
    let batch = call(
        &app,
        Method::POST,
        "/packets/batch",
        Some(&free),
        Some(json!({"packets": [packet_body("a", "b", "b1"), packet_body("a", "b", "b2"), packet_body("a", "b", "b3")]})),
    )
    .await;
    assert_eq!(
        batch.status,
        StatusCode::CREATED,
        "a batch takes one slot: the fifth"
    );
    let sixth = create(free.clone(), packet_body("a", "b", "sixth")).await;
    assert_eq!(sixth.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        sixth.body,
        json!({"detail": "Daily handoff limit reached for your tier"})
    );
    let wait = sixth.retry_after().expect("Retry-After: the next UTC day");
    assert!((1..=86_400).contains(&wait), "{wait}");
    let batch_after = call(
        &app,
        Method::POST,
        "/packets/batch",
        Some(&free),
        Some(json!({"packets": [packet_body("a", "b", "late")]})),
    )
    .await;
    assert_eq!(batch_after.status, StatusCode::TOO_MANY_REQUESTS);
    let chained = call(
        &app,
        Method::POST,
        &format!("/packets/{parent}/chain"),
        Some(&free),
        Some(packet_body("a", "b", "child")),
    )
    .await;
    assert_eq!(chained.status, StatusCode::CREATED, "chains use no slot");
    let unlimited = create(business.clone(), packet_body("a", "b", "business")).await;
    assert_eq!(
        unlimited.status,
        StatusCode::CREATED,
        "business keys have no daily cap"
    );
    let listed = call(
        &app,
        Method::GET,
        "/packets?limit=200",
        Some(&business),
        None,
    )
    .await;
    assert_eq!(listed.body["total"], 4 + 3 + 1 + 1);
}

async fn concurrent_creates_never_pass_the_daily_cap(backend: Backend) {
    let app = Arc::new(limited_app(backend, |_| {}).await);
    let free = key_with(&app, "writer", "free", "racers").await;
    let mut racers = Vec::new();
    for n in 0..12 {
        let (app, free) = (app.clone(), free.clone());
        racers.push(tokio::spawn(async move {
            call(
                &app,
                Method::POST,
                "/packets",
                Some(&free),
                Some(packet_body("a", "b", &format!("r{n}"))),
            )
            .await
            .status
        }));
    }
    let mut statuses = Vec::new();
    for racer in racers {
        statuses.push(racer.await.expect("racer"));
    }
    let created = statuses
        .iter()
        .filter(|status| **status == StatusCode::CREATED)
        .count();
    let refused = statuses
        .iter()
        .filter(|status| **status == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((created, refused), (5, 7), "{statuses:?}");
}

async fn instances_share_the_daily_cap(backend: Backend) {
    let first = limited_app(backend, |_| {}).await;
    let url = first.database_url.clone();
    let second = spawn_app_with(
        backend,
        AppOptions {
            database_url: Some(url),
            configure: Box::new(|config| config.limits.no_rate_limits = false),
            ..Default::default()
        },
    )
    .await;
    let free = key_with(&first, "writer", "free", "shared").await;
    for n in 0..6 {
        let app = if n % 2 == 0 { &first } else { &second };
        let reply = call(
            app,
            Method::POST,
            "/packets",
            Some(&free),
            Some(packet_body("a", "b", "x")),
        )
        .await;
        let expected = if n < 5 {
            StatusCode::CREATED
        } else {
            StatusCode::TOO_MANY_REQUESTS
        };
        assert_eq!(reply.status, expected, "create {n}");
    }
}

async fn limits_are_configurable_and_can_be_turned_off(backend: Backend) {
    let off = spawn_app_with(backend, AppOptions::default()).await;
    for _ in 0..80 {
        let reply = call(&off, Method::GET, "/packets", Some(&off.admin_key), None).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert!(
            reply.headers.iter().all(Option::is_none),
            "no limits, no headers"
        );
    }
    let small = limited_app(backend, |config| {
        config.limits.rate_limit_per_minute = 3;
        config.limits.max_body = "free=1024,pro=2048,business=4096".parse().expect("sizes");
    })
    .await;
    let free = key_with(&small, "writer", "free", "default").await;
    let mut body = packet_body("a", "b", "padded");
    body["context"]["custom"]["padding"] = json!("x".repeat(2048));
    let too_big = call(
        &small,
        Method::POST,
        "/packets",
        Some(&free),
        Some(body.clone()),
    )
    .await;
    assert_eq!(too_big.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        too_big.body["detail"]
            .as_str()
            .is_some_and(|detail| detail.ends_with("(max 1,024 bytes for free tier)")),
        "{}",
        too_big.body
    );
    assert!(
        too_big.headers[..4].iter().all(Option::is_some),
        "a 413 is counted and labelled"
    );
    let fits = call(
        &small,
        Method::POST,
        "/packets",
        Some(&small.admin_key),
        Some(body),
    )
    .await;
    assert_eq!(fits.status, StatusCode::CREATED, "4 KiB for business");
    assert_eq!(fits.limit(), 3);
    let third = call(&small, Method::GET, "/packets", Some(&free), None).await;
    assert_eq!((third.status, third.remaining()), (StatusCode::OK, 1));
}

/// PostgreSQL holds the request windows, so instances on one database count together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_instances_share_the_request_windows() {
    if postgres_url().is_none() {
        crate::support::notice_postgres_skipped();
        return;
    }
    let configure = |config: &mut handoffrail::config::ServeConfig| {
        config.limits.no_rate_limits = false;
        config.limits.rate_limit_per_minute = 10;
    };
    let first = limited_app(Backend::Postgres, configure).await;
    let second = spawn_app_with(
        Backend::Postgres,
        AppOptions {
            database_url: Some(first.database_url.clone()),
            configure: Box::new(configure),
            ..Default::default()
        },
    )
    .await;
    let key = key_with(&first, "reader", "business", "default").await;
    let mut statuses = Vec::new();
    for n in 0..12 {
        let app = if n % 2 == 0 { &first } else { &second };
        statuses.push(
            call(app, Method::GET, "/packets", Some(&key), None)
                .await
                .status
                .as_u16(),
        );
    }
    assert_eq!(statuses, [[200; 10].as_slice(), &[429, 429]].concat());
}
