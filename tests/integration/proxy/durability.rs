//! An acknowledged record is durable: responses end only once their records are committed, records the
//! database cannot take are spooled and written later, and the recorder shows in the metrics.

use super::*;
use crate::on_both_backends;
use crate::support::{spawn_app_with, AppOptions, Backend, TestApp};
use crate::upstream::spawn_upstream;
use std::time::Duration;

on_both_backends!(
    responses_complete_only_once_their_records_are_durable,
    records_the_database_cannot_take_are_spooled_then_written,
    the_recorder_shows_in_metrics,
);

/// Whether record `id` is committed, read straight from the database (not through the API, which waits for
/// fresh ids).
async fn committed(database_url: &str, backend: Backend, id: &str) -> bool {
    use sqlx::Connection;
    let count: i64 = match backend {
        Backend::Sqlite => {
            let mut connection = sqlx::SqliteConnection::connect(database_url)
                .await
                .expect("sqlite");
            sqlx::query_scalar("SELECT count(*) FROM records WHERE id = ?")
                .bind(id)
                .fetch_one(&mut connection)
                .await
                .expect("count")
        }
        Backend::Postgres => {
            let mut connection = sqlx::PgConnection::connect(database_url)
                .await
                .expect("postgres");
            let id = uuid::Uuid::parse_str(id).expect("record id");
            sqlx::query_scalar("SELECT count(*) FROM records WHERE id = $1")
                .bind(id)
                .fetch_one(&mut connection)
                .await
                .expect("count")
        }
    };
    count == 1
}

/// The value of one metric line (`name{labels} value`), 0 when absent.
fn metric_value(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Waits (up to 10 s) until `/metrics` satisfies `ready`, and fails the test otherwise.
async fn wait_for_metric(app: &TestApp, ready: impl Fn(&str) -> bool) {
    let mut metrics = String::new();
    for _ in 0..200 {
        metrics = app.metrics().await;
        if ready(&metrics) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the metrics never got there:\n{metrics}");
}

/// Three exchanges through the proxy, one after the other (`{prefix}/0` …), each read to its end: their record ids.
async fn proxy_three(client: &reqwest::Client, upstream: &Upstream, prefix: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for n in 0..3 {
        let response = client
            .get(upstream.url(&format!("{prefix}/{n}")))
            .send()
            .await
            .expect("proxied");
        ids.push(record_id(&response));
        response.bytes().await.expect("acknowledged");
    }
    ids
}

/// Holds the records table so that the recorder's inserts wait: an exclusive transaction on SQLite, an
/// EXCLUSIVE table lock on PostgreSQL (reads go on).
enum TableLock {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl TableLock {
    async fn take(app: &TestApp, backend: Backend) -> TableLock {
        use sqlx::Connection;
        match backend {
            Backend::Sqlite => {
                let mut connection = sqlx::SqliteConnection::connect(&app.database_url)
                    .await
                    .expect("sqlite");
                sqlx::raw_sql("BEGIN EXCLUSIVE")
                    .execute(&mut connection)
                    .await
                    .expect("lock");
                TableLock::Sqlite(connection)
            }
            Backend::Postgres => {
                let mut connection = sqlx::PgConnection::connect(&app.database_url)
                    .await
                    .expect("postgres");
                sqlx::raw_sql("BEGIN; LOCK TABLE records IN EXCLUSIVE MODE")
                    .execute(&mut connection)
                    .await
                    .expect("lock");
                TableLock::Postgres(connection)
            }
        }
    }

    async fn release(self) {
        match self {
            TableLock::Sqlite(mut connection) => sqlx::raw_sql("ROLLBACK")
                .execute(&mut connection)
                .await
                .map(drop),
            TableLock::Postgres(mut connection) => sqlx::raw_sql("ROLLBACK")
                .execute(&mut connection)
                .await
                .map(drop),
        }
        .expect("unlock");
    }
}

async fn responses_complete_only_once_their_records_are_durable(backend: Backend) {
    let app = spawn_app_with(
        backend,
        AppOptions {
            configure: Box::new(|config| config.proxy.record_queue = 1),
            ..Default::default()
        },
    )
    .await;
    let upstream = spawn_upstream().await;
    let client = through_proxy(&app, "a", &app.admin_key);
    let lock = TableLock::take(&app, backend).await;

    // Nothing can be written: every response is held back before its end, though each reached the
    // upstream and has its headers (and its record id). Each exchange checks, the moment its response ends,
    // that its record is already committed (reads go on under the lock), so an end released early fails here.
    let completed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut exchanges = Vec::new();
    for n in 0..6 {
        let (client, url, completed, database) = (
            client.clone(),
            upstream.url(&format!("/echo/held/{n}")),
            completed.clone(),
            app.database_url.clone(),
        );
        exchanges.push(tokio::spawn(async move {
            let response = client.get(url).send().await.expect("proxied");
            let id = record_id(&response);
            let body = response.bytes().await.expect("body");
            completed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            assert!(
                committed(&database, backend, &id).await,
                "the response of {id} ended before its record was committed"
            );
            (id, body)
        }));
    }
    for _ in 0..100 {
        if upstream.hits() == 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(upstream.hits(), 6, "every request reached the upstream");
    // The recorder holds a batch it cannot write.
    wait_for_metric(&app, |metrics| {
        metric_value(metrics, "handoffrail_proxy_records_total{state=\"queued\"}") >= 1.0
    })
    .await;
    let done = completed.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        done, 0,
        "{done} responses completed while none of their records could be written"
    );

    lock.release().await;
    let mut ids = Vec::new();
    for exchange in exchanges {
        let (id, body) = tokio::time::timeout(Duration::from_secs(30), exchange)
            .await
            .expect("held responses complete once records are written")
            .expect("exchange task");
        assert!(!body.is_empty());
        ids.push(id);
    }
    for id in ids {
        let stored = record(&app, &id).await;
        assert_eq!(stored["signature_valid"], true);
        assert_eq!(stored["aborted"], false);
    }
}

async fn records_the_database_cannot_take_are_spooled_then_written(backend: Backend) {
    let app = spawn_app_with(backend, AppOptions::default()).await;
    let upstream = spawn_upstream().await;
    let client = through_proxy(&app, "a", &app.admin_key);
    let lock = TableLock::take(&app, backend).await;
    // The database holds every write past the recorder's deadline: the records go to the spool on disk and
    // the responses complete, acknowledged, while the table is still locked.
    let ids = proxy_three(&client, &upstream, "/echo/spooled").await;
    let spool = app.data_dir().join("spool");
    let spooled = std::fs::read_dir(&spool).expect("spool directory").count();
    assert!(spooled >= 1, "the batches wait in {}", spool.display());
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("handoffrail_proxy_records_total{state=\"spooled\"} 3"),
        "{metrics}"
    );
    lock.release().await;
    // The replayer writes them once the database answers, and empties the spool.
    for id in &ids {
        let stored = record(&app, id).await;
        assert_eq!(stored["signature_valid"], true);
    }
    crate::support::wait_for_empty_spool(app.data_dir()).await;
    assert_eq!(
        std::fs::read_dir(&spool).map_or(0, |entries| entries.count()),
        0
    );
}

async fn the_recorder_shows_in_metrics(backend: Backend) {
    let app = spawn_app_with(backend, AppOptions::default()).await;
    let upstream = spawn_upstream().await;
    let client = through_proxy(&app, "a", &app.admin_key);
    let ids = proxy_three(&client, &upstream, "/echo").await;
    for id in &ids {
        record(&app, id).await;
    }
    // The counter moves just after the commit that made the records visible.
    let expected = [
        "handoffrail_proxy_records_total{state=\"queued\"} 3",
        "handoffrail_proxy_records_total{state=\"written\"} 3",
        "handoffrail_proxy_records_total{state=\"lost\"} 0",
        "handoffrail_proxy_record_queue_depth 0",
    ];
    wait_for_metric(&app, |metrics| {
        expected
            .iter()
            .all(|line| metrics.lines().any(|l| l == *line))
    })
    .await;
}
