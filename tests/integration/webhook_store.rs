//! The webhook outbox in the store, on both backends: deliveries are written with the packet change that
//! caused them and only then, for the tenant's active hooks that asked for the event; due deliveries are taken
//! by one worker each, and an attempt's outcome is recorded only under the attempt taken.

use crate::on_both_backends;
use crate::store::{fresh, open, request};
use crate::support::Backend;
use handoffrail::announce::Announcement;
use handoffrail::packets::model::Status;
use handoffrail::paging::Page;
use handoffrail::store::{Store, StoreOptions};
use handoffrail::timestamp::Timestamp;
use handoffrail::webhooks::signing::Secret;
use handoffrail::webhooks::store::AttemptRecord;
use handoffrail::webhooks::{DeliveryStatus, OutboxEvent, Webhook};
use std::collections::HashSet;
use uuid::Uuid;

on_both_backends!(
    deliveries_are_written_with_the_change_and_only_then,
    due_deliveries_are_taken_by_one_worker_each,
);

async fn hook(store: &dyn Store, tenant: &str, events: &[&str], active: bool) -> Webhook {
    let webhook = Webhook {
        id: Uuid::now_v7(),
        url: "https://hooks.example.com/in".into(),
        events: events.iter().map(|event| event.to_string()).collect(),
        tenant_id: tenant.into(),
        active: true,
        created_at: Timestamp::now(),
    };
    store
        .insert_webhook(&webhook, &Secret::new("0123456789abcdef".into()))
        .await
        .expect("insert hook");
    if !active {
        store
            .deactivate_webhook(tenant, webhook.id, Timestamp::now())
            .await
            .expect("deactivate");
    }
    webhook
}

fn event(name: &str, packet_id: Uuid) -> OutboxEvent {
    OutboxEvent {
        id: Uuid::now_v7(),
        name: name.into(),
        packet_id: Some(packet_id),
        body: format!(r#"{{"event": "{name}"}}"#),
        time: Timestamp::now(),
    }
}

async fn count(store: &dyn Store, tenant: &str, hook: &Webhook) -> usize {
    store
        .list_deliveries(tenant, hook.id, None, Page::first(200))
        .await
        .expect("list")
        .len()
}

async fn deliveries_are_written_with_the_change_and_only_then(backend: Backend) {
    let (store, _, _dir) = open(backend).await;
    let store = store.as_ref();
    let asked = hook(store, "t", &["packet.created", "packet.claimed"], true).await;
    let other_event = hook(store, "t", &["packet.failed"], true).await;
    let inactive = hook(store, "t", &["packet.created"], false).await;
    let other_tenant = hook(store, "u", &["packet.created"], true).await;

    let (packet, created) = fresh(request("a", &[]), Timestamp::now());
    let announced = event("packet.created", packet.id);
    store
        .insert_packet(
            "t",
            &packet,
            &[created],
            &Announcement::webhooks(vec![announced.clone()]),
            None,
            None,
        )
        .await
        .expect("insert");
    assert_eq!(count(store, "t", &asked).await, 1);
    assert_eq!(count(store, "t", &other_event).await, 0);
    assert_eq!(count(store, "t", &inactive).await, 0);
    assert_eq!(count(store, "u", &other_tenant).await, 0);
    let listed = store
        .list_deliveries("t", asked.id, None, Page::first(10))
        .await
        .expect("list");
    assert_eq!(listed[0].event_id, announced.id);
    assert_eq!(listed[0].status, DeliveryStatus::Pending);
    assert_eq!(listed[0].created_at, announced.time);
    // A delivery's id is a version 7 UUID carrying its event's time, so that ids are appended in order.
    assert_eq!(listed[0].id.get_version_num(), 7);
    assert_eq!(listed[0].id.get_variant(), uuid::Variant::RFC4122);
    assert_eq!(listed[0].id.get_timestamp(), announced.id.get_timestamp());
    assert_ne!(listed[0].id, announced.id);
    assert_eq!(listed[0].packet_id, Some(packet.id));
    // A tenant reads only its own hooks' deliveries.
    assert!(store
        .list_deliveries("u", asked.id, None, Page::first(10))
        .await
        .expect("list")
        .is_empty());

    // A lost race writes nothing: neither the packet nor its webhook.
    let mut claimed = packet.clone();
    claimed.status = Status::Claimed;
    let stale = store
        .replace_packet(
            "t",
            7,
            &claimed,
            &[],
            &Announcement::webhooks(vec![event("packet.claimed", packet.id)]),
            None,
        )
        .await
        .expect("stale write");
    assert!(!stale);
    assert_eq!(count(store, "t", &asked).await, 1);
    assert!(store
        .replace_packet(
            "t",
            0,
            &claimed,
            &[],
            &Announcement::webhooks(vec![event("packet.claimed", packet.id)]),
            None
        )
        .await
        .expect("write"));
    assert_eq!(count(store, "t", &asked).await, 2);
}

async fn due_deliveries_are_taken_by_one_worker_each(backend: Backend) {
    let (store, _, _dir) = open(backend).await;
    let lease = StoreOptions::default().delivery_lease;
    let hook = hook(store.as_ref(), "t", &["packet.created"], true).await;
    let before = Timestamp::now();
    for _ in 0..60 {
        let (packet, created) = fresh(request("a", &[]), Timestamp::now());
        let announced = event("packet.created", packet.id);
        store
            .insert_packet(
                "t",
                &packet,
                &[created],
                &Announcement::webhooks(vec![announced]),
                None,
                None,
            )
            .await
            .expect("insert");
    }
    let after = Timestamp::now();
    // Each delivery is written taken for its first attempt by the writing process, and handed to it.
    let first_attempts = store.fresh_deliveries().take(100);
    assert_eq!(first_attempts.len(), 60);
    assert!(first_attempts
        .iter()
        .all(|delivery| delivery.attempt == 1 && delivery.url == hook.url));
    assert!(
        store
            .take_due(after, after.after(lease), 100)
            .await
            .expect("take")
            .is_empty(),
        "a first attempt's lease holds its row"
    );
    let due = store.next_due().await.expect("next").expect("due");
    assert!(before.after(lease) <= due && due <= after.after(lease));

    // The first attempt's outcome is recorded under it.
    let at = Timestamp::now();
    let delivered = |id, attempt| AttemptRecord {
        delivery_id: id,
        attempt,
        status: DeliveryStatus::Delivered,
        status_code: Some(200),
        error: None,
        next_retry_at: None,
        at,
    };
    let done = first_attempts[0].id;
    assert_eq!(
        store
            .record_attempts(&[delivered(done, 1)])
            .await
            .expect("record"),
        vec![done]
    );

    // Leases that ran out unattempted (the writer died) make the rows due: taken by one worker each.
    let now = after.after(lease).plus_seconds(1).expect("later");
    let lease_until = now.plus_seconds(30).expect("lease");
    let takers: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.take_due(now, lease_until, 20).await.expect("take") })
        })
        .collect();
    let mut taken = Vec::new();
    for taker in takers {
        taken.extend(taker.await.expect("taker"));
    }
    let ids: HashSet<_> = taken.iter().map(|delivery| delivery.id).collect();
    assert_eq!(
        taken.len(),
        59,
        "every due delivery is taken, the delivered one is done"
    );
    assert_eq!(ids.len(), 59, "and none twice");
    assert!(!ids.contains(&done));
    assert!(taken
        .iter()
        .all(|delivery| delivery.attempt == 2 && delivery.url == hook.url));
    assert!(
        store
            .take_due(now, lease_until, 20)
            .await
            .expect("take")
            .is_empty(),
        "leased rows are not due"
    );
    assert_eq!(store.next_due().await.expect("next"), Some(lease_until));

    // Outcomes are recorded many at once, each under the attempt that was taken and only under it: the late
    // outcome of a first attempt that outlived its lease does not overwrite the next one.
    let (first, second) = (&taken[0], &taken[1]);
    let retry_at = at.plus_seconds(5).expect("retry");
    let failed = AttemptRecord {
        delivery_id: second.id,
        attempt: 2,
        status: DeliveryStatus::Failed,
        status_code: Some(503),
        error: Some("HTTP 503: busy".into()),
        next_retry_at: Some(retry_at),
        at,
    };
    assert_eq!(
        store
            .record_attempts(&[delivered(first.id, 1), delivered(first.id, 3)])
            .await
            .expect("record"),
        Vec::<Uuid>::new(),
        "attempts that are not the row's latest are not recorded"
    );
    let recorded: HashSet<_> = store
        .record_attempts(&[
            delivered(first.id, 3),
            delivered(first.id, 2),
            failed.clone(),
        ])
        .await
        .expect("record")
        .into_iter()
        .collect();
    assert_eq!(recorded, HashSet::from([first.id, second.id]));
    let rows = store
        .list_deliveries("t", hook.id, None, Page::first(100))
        .await
        .expect("list");
    let row = |id| rows.iter().find(|row| row.id == id).expect("row");
    let (written_first, written_second) = (row(first.id), row(second.id));
    assert_eq!(
        (
            written_first.status,
            written_first.last_status_code,
            written_first.delivered_at
        ),
        (DeliveryStatus::Delivered, Some(200), Some(at))
    );
    assert_eq!(
        (
            written_second.status,
            written_second.last_status_code,
            written_second.last_error.as_deref(),
            written_second.next_retry_at,
            written_second.delivered_at
        ),
        (
            DeliveryStatus::Failed,
            Some(503),
            Some("HTTP 503: busy"),
            Some(retry_at),
            None
        )
    );
    // A lease that ran out makes the row due again; the next attempt is counted.
    let later = lease_until.plus_seconds(1).expect("later");
    let retaken = store
        .take_due(later, later.plus_seconds(30).expect("lease"), 100)
        .await
        .expect("take")
        .len();
    assert_eq!(
        retaken, 58,
        "the two delivered ones are done; the failed one is retried"
    );
    let figures = store
        .delivery_figures(before.plus_seconds(-3600).expect("since"))
        .await
        .expect("figures");
    assert_eq!(figures.webhooks, 1);
    assert_eq!(figures.active_webhooks, 1);
    assert_eq!(figures.outbox_depth, 58);
    assert_eq!(figures.delivered_last_hour, 2);
}
