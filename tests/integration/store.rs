//! The `Store` conformance suite: every storage behaviour, called through the trait, on both backends.

use crate::on_both_backends;
use crate::support::{fresh_database, init, Backend, TestDatabase};
use handoffrail::announce::Announcement;
use handoffrail::auth::tenants::{Tenant, TenantChanges, TenantCreate, TenantWrite};
use handoffrail::auth::{hash_key, NewApiKey, Role, Tier};
use handoffrail::packets::create::new_packet;
use handoffrail::packets::history::NewEvent;
use handoffrail::packets::listing::PacketQuery;
use handoffrail::packets::model::{Packet, PacketCreate, Status};
use handoffrail::paging::{Cursor, Page};
use handoffrail::store::{self, KeyChange, Store, StoreOptions};
use handoffrail::timestamp::Timestamp;
use serde_json::json;
use std::sync::Arc;

on_both_backends!(
    packets_round_trip_exactly,
    replace_is_conditional_on_the_revision,
    reads_and_writes_are_scoped_to_the_tenant,
    listing_filters_and_orders_in_the_store,
    history_is_kept_in_write_order,
    keys_are_found_by_hash_and_revoked_once,
    bootstrap_happens_once_and_seeding_is_idempotent,
    stale_packets_are_found_for_expiry,
    checkpoint_deadlines_are_stored_and_found,
    migrations_apply_once_on_reopen,
    records_round_trip_sealed_and_tenant_scoped,
    latest_record_for_an_action_is_found_by_run,
    a_byte_changed_in_the_database_breaks_the_seal,
    tenant_updates_write_only_the_fields_named,
    an_export_is_the_newest_records_oldest_first,
);

/// A new packet and its `created` event.
pub(crate) fn fresh(request: PacketCreate, at: Timestamp) -> (Packet, NewEvent) {
    let change = new_packet(uuid::Uuid::new_v4(), request, None, at);
    let created = change.events.into_iter().next().expect("a created event");
    (change.packet, created)
}

/// A store on a fresh database, with what must outlive it (the database, dropped after the test, and its
/// directory).
pub(crate) async fn open(
    backend: Backend,
) -> (Arc<dyn Store>, String, (TestDatabase, tempfile::TempDir)) {
    init();
    let dir = tempfile::TempDir::new().expect("dir");
    let database = fresh_database(backend, &dir).await;
    let url = database.url.clone();
    let store = store::open(&url, &StoreOptions::default())
        .await
        .expect("store opens");
    (store, url, (database, dir))
}

pub(crate) fn request(source: &str, tags: &[&str]) -> PacketCreate {
    let text = format!(
        r#"{{"metadata": {{"source_agent": {{"id": "{source}", "name": "S"}}, "target_agent": {{"id": "t", "name": "T"}},
             "tags": {}}},
            "context": {{"summary": "s", "custom": {{"big": 123456789012345678901234567890, "n": 1.10}}}}}}"#,
        json!(tags)
    );
    serde_json::from_str(&text).expect("valid request")
}

async fn packets_round_trip_exactly(backend: Backend) {
    let (store, _, _dir) = open(backend).await;
    let (packet, event) = fresh(request("a", &["x"]), Timestamp::now());
    store
        .insert_packet(
            "t1",
            &packet,
            &[event],
            &Announcement::default(),
            None,
            None,
        )
        .await
        .expect("insert");
    let stored = store
        .get_packet("t1", packet.id)
        .await
        .expect("get")
        .expect("found");
    assert_eq!(stored.packet, packet);
    assert_eq!(stored.revision, 0);
    let custom = &serde_json::to_value(&stored.packet).expect("json")["context"]["custom"];
    assert_eq!(custom["n"].to_string(), "1.10", "numbers keep their text");
    assert_eq!(custom["big"].to_string(), "123456789012345678901234567890");
}

async fn replace_is_conditional_on_the_revision(backend: Backend) {
    let (store, _, _dir) = open(backend).await;
    let (packet, event) = fresh(request("a", &[]), Timestamp::now());
    store
        .insert_packet(
            "t1",
            &packet,
            &[event],
            &Announcement::default(),
            None,
            None,
        )
        .await
        .expect("insert");
    let mut claimed = packet.clone();
    claimed.status = Status::Claimed;
    let claim_event = NewEvent::new(
        packet.id,
        "claimed",
        "agent:x".into(),
        json!({}),
        Timestamp::now(),
    );
    assert!(store
        .replace_packet(
            "t1",
            0,
            &claimed,
            std::slice::from_ref(&claim_event),
            &Announcement::default(),
            None
        )
        .await
        .expect("first write"));
    let mut failed = packet.clone();
    failed.status = Status::Failed;
    let stale = NewEvent::new(
        packet.id,
        "failed",
        "agent:y".into(),
        json!({}),
        Timestamp::now(),
    );
    assert!(
        !store
            .replace_packet("t1", 0, &failed, &[stale], &Announcement::default(), None)
            .await
            .expect("stale write"),
        "stale revision loses"
    );
    let stored = store
        .get_packet("t1", packet.id)
        .await
        .expect("get")
        .expect("found");
    assert_eq!(
        (stored.packet.status, stored.revision),
        (Status::Claimed, 1)
    );
    let history = store
        .packet_history("t1", packet.id)
        .await
        .expect("history");
    assert_eq!(history.len(), 2, "the losing write appended no event");
}

async fn reads_and_writes_are_scoped_to_the_tenant(backend: Backend) {
    let (store, _, _dir) = open(backend).await;
    let (packet, event) = fresh(request("a", &[]), Timestamp::now());
    store
        .insert_packet(
            "t1",
            &packet,
            &[event],
            &Announcement::default(),
            None,
            None,
        )
        .await
        .expect("insert");
    assert!(store
        .get_packet("t2", packet.id)
        .await
        .expect("get")
        .is_none());
    assert!(!store
        .replace_packet("t2", 0, &packet, &[], &Announcement::default(), None)
        .await
        .expect("replace"));
    assert!(store
        .packet_history("t2", packet.id)
        .await
        .expect("history")
        .is_empty());
    let query = PacketQuery {
        page: Page::first(10),
        ..Default::default()
    };
    assert_eq!(
        store.list_packets("t2", &query).await.expect("list").total,
        0
    );
    assert_eq!(
        store.list_packets("t1", &query).await.expect("list").total,
        1
    );
}

async fn listing_filters_and_orders_in_the_store(backend: Backend) {
    let (store, _, _dir) = open(backend).await;
    let mut ids = Vec::new();
    for (index, (source, tags)) in [
        ("a", vec!["red"]),
        ("b", vec!["red", "blue"]),
        ("a", vec![]),
        ("c", vec!["blue"]),
    ]
    .into_iter()
    .enumerate()
    {
        let at = Timestamp::from_micros(1_700_000_000_000_000 + index as i64 * 1000).expect("time");
        let (packet, event) = fresh(request(source, &tags), at);
        store
            .insert_packet("t", &packet, &[event], &Announcement::default(), None, None)
            .await
            .expect("insert");
        ids.push(packet.id);
    }
    let list = |query: PacketQuery| {
        let store = store.clone();
        async move {
            let page = store
                .list_packets(
                    "t",
                    &PacketQuery {
                        page: Page {
                            limit: 10,
                            ..query.page
                        },
                        ..query
                    },
                )
                .await
                .expect("list");
            (
                page.packets
                    .iter()
                    .map(|packet| packet.id)
                    .collect::<Vec<_>>(),
                page.total,
                page.has_more,
            )
        }
    };
    assert_eq!(
        list(PacketQuery::default()).await.0,
        [ids[3], ids[2], ids[1], ids[0]]
    );
    assert_eq!(
        list(PacketQuery {
            source_agent: Some("a".into()),
            ..Default::default()
        })
        .await
        .0,
        [ids[2], ids[0]]
    );
    assert_eq!(
        list(PacketQuery {
            tags: vec!["red".into(), "blue".into()],
            ..Default::default()
        })
        .await
        .0,
        [ids[1]]
    );
    assert_eq!(
        list(PacketQuery {
            statuses: vec!["created".into(), "bogus".into()],
            ..Default::default()
        })
        .await
        .1,
        4
    );
    let middle = Timestamp::from_micros(1_700_000_000_001_000).expect("time");
    assert_eq!(
        list(PacketQuery {
            created_after: Some(middle),
            ..Default::default()
        })
        .await
        .0,
        [ids[3], ids[2], ids[1]]
    );
    assert_eq!(
        list(PacketQuery {
            created_before: Some(middle),
            ..Default::default()
        })
        .await
        .0,
        [ids[1], ids[0]]
    );
    let page = store
        .list_packets(
            "t",
            &PacketQuery {
                page: Page::first(2),
                ..Default::default()
            },
        )
        .await
        .expect("page");
    assert!(page.has_more);
    let cursor: Cursor = page.next_cursor().expect("cursor");
    let (rest, total, more) = list(PacketQuery {
        page: Page {
            cursor: Some(cursor),
            offset: 99,
            ..Page::default()
        },
        ..Default::default()
    })
    .await;
    assert_eq!(
        (rest, total, more),
        (vec![ids[1], ids[0]], 2, false),
        "cursor ignores offset; total counts from it"
    );
    let offset = store
        .list_packets(
            "t",
            &PacketQuery {
                page: Page {
                    limit: 1,
                    offset: 3,
                    cursor: None,
                },
                ..Default::default()
            },
        )
        .await
        .expect("offset");
    assert_eq!(
        (offset.packets[0].id, offset.total, offset.has_more),
        (ids[0], 4, false)
    );
}

async fn history_is_kept_in_write_order(backend: Backend) {
    let (store, _, _dir) = open(backend).await;
    let at = Timestamp::now();
    let (packet, created) = fresh(request("a", &[]), at);
    // Same timestamp on every event: order must come from write order, not the clock.
    let events: Vec<NewEvent> = ["one", "two", "three"]
        .iter()
        .map(|kind| NewEvent::new(packet.id, kind, "system".into(), json!({"k": kind}), at))
        .collect();
    store
        .insert_packet(
            "t",
            &packet,
            &[created],
            &Announcement::default(),
            None,
            None,
        )
        .await
        .expect("insert");
    store
        .replace_packet("t", 0, &packet, &events, &Announcement::default(), None)
        .await
        .expect("replace");
    let history = store.packet_history("t", packet.id).await.expect("history");
    let kinds: Vec<&str> = history
        .iter()
        .map(|event| event.event_type.as_str())
        .collect();
    assert_eq!(kinds, ["created", "one", "two", "three"]);
    assert_eq!(history[2].details, json!({"k": "two"}));
    assert_eq!(history[1].timestamp, at);
}

async fn keys_are_found_by_hash_and_revoked_once(backend: Backend) {
    let (store, _, _dir) = open(backend).await;
    let key = NewApiKey::generate("k", "t1", Role::Agent, Tier::Pro);
    store.insert_api_key(&key).await.expect("insert");
    let found = store
        .find_api_key_by_hash(&hash_key(&key.plaintext))
        .await
        .expect("find")
        .expect("found");
    assert_eq!(found, key.key);
    assert!(store
        .find_api_key_by_hash(&hash_key("hr_other"))
        .await
        .expect("find")
        .is_none());
    assert_eq!(
        store
            .revoke_api_key("t2", key.key.id)
            .await
            .expect("revoke"),
        KeyChange::NotFound
    );
    assert_eq!(
        store
            .revoke_api_key("t1", key.key.id)
            .await
            .expect("revoke"),
        KeyChange::Done
    );
    assert_eq!(
        store
            .revoke_api_key("t1", key.key.id)
            .await
            .expect("revoke"),
        KeyChange::AlreadyRevoked
    );
    let replacement = NewApiKey::generate("k2", "t1", Role::Agent, Tier::Pro);
    assert_eq!(
        store
            .rotate_api_key("t1", key.key.id, &replacement)
            .await
            .expect("rotate"),
        KeyChange::AlreadyRevoked
    );
    assert!(
        store
            .find_api_key_by_hash(&replacement.key_hash)
            .await
            .expect("find")
            .is_none(),
        "refused rotation stores nothing"
    );
    assert!(
        store
            .find_api_key_by_hash(&key.key_hash)
            .await
            .expect("find")
            .expect("still there")
            .revoked
    );
}

async fn bootstrap_happens_once_and_seeding_is_idempotent(backend: Backend) {
    let (store, _, _dir) = open(backend).await;
    let first = NewApiKey::generate("admin", "default", Role::Admin, Tier::Business);
    let second = NewApiKey::generate("admin", "default", Role::Admin, Tier::Business);
    let (a, b) = tokio::join!(
        store.bootstrap_admin_key(&first),
        store.bootstrap_admin_key(&second)
    );
    assert_eq!(
        [a.expect("a"), b.expect("b")]
            .iter()
            .filter(|won| **won)
            .count(),
        1,
        "exactly one bootstrap wins"
    );
    assert_eq!(store.list_api_keys("default").await.expect("list").len(), 1);
    let seeded = NewApiKey::generate("seed", "default", Role::Admin, Tier::Business);
    assert!(store.seed_api_key(&seeded).await.expect("seed"));
    assert!(
        !store.seed_api_key(&seeded).await.expect("seed again"),
        "seeding twice inserts once"
    );
    assert_eq!(store.list_api_keys("default").await.expect("list").len(), 2);
}

async fn stale_packets_are_found_for_expiry(backend: Backend) {
    let (store, _, _dir) = open(backend).await;
    let old = Timestamp::from_micros(1_600_000_000_000_000).expect("time");
    let (stale, event) = fresh(request("a", &[]), old);
    store
        .insert_packet("t", &stale, &[event], &Announcement::default(), None, None)
        .await
        .expect("insert");
    let (mut finished, event) = fresh(request("a", &[]), old);
    finished.status = Status::Completed;
    store
        .insert_packet(
            "t",
            &finished,
            &[event],
            &Announcement::default(),
            None,
            None,
        )
        .await
        .expect("insert");
    let (fresh, event) = fresh(request("a", &[]), Timestamp::now());
    store
        .insert_packet("t", &fresh, &[event], &Announcement::default(), None, None)
        .await
        .expect("insert");
    let cutoff = Timestamp::from_micros(1_700_000_000_000_000).expect("time");
    let due = store
        .due_for_expiry(cutoff, Timestamp::now(), 10)
        .await
        .expect("due");
    assert_eq!(due, vec![("t".to_string(), stale.id)]);
}

async fn checkpoint_deadlines_are_stored_and_found(backend: Backend) {
    let (store, _, _dir) = open(backend).await;
    let now = Timestamp::now();
    let (mut waiting, event) = fresh(request("a", &[]), now);
    waiting.status = Status::AwaitingHuman;
    let deadline = now.plus_seconds(30).expect("time");
    store
        .insert_packet(
            "t",
            &waiting,
            &[event],
            &Announcement::default(),
            Some(deadline),
            None,
        )
        .await
        .expect("insert");
    let stored = store
        .get_packet("t", waiting.id)
        .await
        .expect("get")
        .expect("found");
    assert_eq!(stored.hitl_deadline, Some(deadline));
    let long_ago = Timestamp::from_micros(0).expect("epoch");
    assert!(
        store
            .due_for_expiry(long_ago, now, 10)
            .await
            .expect("due")
            .is_empty(),
        "not yet due"
    );
    let later = now.plus_seconds(31).expect("time");
    assert_eq!(
        store
            .due_for_expiry(long_ago, later, 10)
            .await
            .expect("due"),
        vec![("t".to_string(), waiting.id)]
    );
    let mut answered = waiting.clone();
    answered.status = Status::Claimed;
    assert!(store
        .replace_packet("t", 0, &answered, &[], &Announcement::default(), None)
        .await
        .expect("replace"));
    let stored = store
        .get_packet("t", waiting.id)
        .await
        .expect("get")
        .expect("found");
    assert_eq!(
        stored.hitl_deadline, None,
        "a replace sets the deadline it is given"
    );
    assert!(store
        .due_for_expiry(long_ago, later, 10)
        .await
        .expect("due")
        .is_empty());
}

async fn migrations_apply_once_on_reopen(backend: Backend) {
    let (store, url, _dir) = open(backend).await;
    let key = NewApiKey::generate("k", "t", Role::Reader, Tier::Free);
    store.insert_api_key(&key).await.expect("insert");
    drop(store);
    let reopened = store::open(&url, &StoreOptions::default())
        .await
        .expect("reopen");
    assert!(reopened
        .find_api_key_by_hash(&key.key_hash)
        .await
        .expect("find")
        .is_some());
    reopened.ping().await.expect("ping");
}

/// The fixture record, re-addressed: a fresh id, this tenant, run, action, agent, start time and body.
pub(crate) fn evidence(
    tenant: &str,
    run: &str,
    action: &str,
    agent: &str,
    started_micros: i64,
    body: &[u8],
) -> handoffrail::records::Record {
    let fixture = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/records/get-order.json"
    ));
    let mut record: handoffrail::records::Record =
        serde_json::from_str(fixture).expect("fixture record");
    let started_at = Timestamp::from_micros(started_micros).expect("time");
    record.id = uuid::Uuid::now_v7();
    record.tenant_id = tenant.into();
    record.run_id = Some(run.into());
    record.action = Some(action.into());
    record.agent_id = Some(agent.into());
    record.timings.started_at = started_at;
    record.response_body = body.to_vec();
    record.response_body_size = body.len() as u64;
    record
}

async fn records_round_trip_sealed_and_tenant_scoped(backend: Backend) {
    let (store, _, _dir) = open(backend).await;
    let key = handoffrail::records::RecordKey::generate();
    let binary = [0u8, 159, 146, 150, 255, b'{'];
    let sealed: Vec<_> = [b"{\"order\": {\"id\": 7}}".as_slice(), &binary, b""]
        .iter()
        .enumerate()
        .map(|(index, body)| {
            key.seal(evidence(
                "t1",
                "run",
                "get_order",
                "a",
                1_700_000_000_000_000 + index as i64,
                body,
            ))
        })
        .collect();
    store.insert_records(&sealed).await.expect("batch insert");
    for original in &sealed {
        let stored = store
            .get_record("t1", original.record.id)
            .await
            .expect("get")
            .expect("found");
        assert_eq!(
            &stored, original,
            "bodies and every field come back exactly"
        );
        assert!(key.verify(&stored).is_valid());
        assert!(
            store
                .get_record("t2", original.record.id)
                .await
                .expect("get")
                .is_none(),
            "other tenant"
        );
    }
}

async fn latest_record_for_an_action_is_found_by_run(backend: Backend) {
    let (store, _, _dir) = open(backend).await;
    let key = handoffrail::records::RecordKey::generate();
    let base = 1_700_000_000_000_000;
    let records = [
        evidence("t", "run-1", "get_order", "a", base, b"1"),
        evidence("t", "run-1", "get_order", "b", base + 10, b"2"),
        evidence("t", "run-1", "get_order", "a", base + 20, b"3"),
        evidence("t", "run-1", "list_orders", "a", base + 30, b"4"),
        evidence("t", "run-2", "get_order", "a", base + 40, b"5"),
        evidence("other", "run-1", "get_order", "a", base + 50, b"6"),
    ];
    let sealed: Vec<_> = records
        .iter()
        .cloned()
        .map(|record| key.seal(record))
        .collect();
    store.insert_records(&sealed).await.expect("insert");
    let body = |found: Option<handoffrail::records::SealedRecord>| {
        found.map(|sealed| sealed.record.response_body)
    };
    assert_eq!(
        body(
            store
                .latest_record_for_action("t", "run-1", "get_order", None)
                .await
                .expect("lookup")
        ),
        Some(b"3".to_vec())
    );
    assert_eq!(
        body(
            store
                .latest_record_for_action("t", "run-1", "get_order", Some("b"))
                .await
                .expect("lookup")
        ),
        Some(b"2".to_vec())
    );
    assert_eq!(
        body(
            store
                .latest_record_for_action("t", "run-3", "get_order", None)
                .await
                .expect("lookup")
        ),
        None
    );
    assert_eq!(
        body(
            store
                .latest_record_for_action("t", "run-1", "refund", None)
                .await
                .expect("lookup")
        ),
        None
    );
}

/// Flips one bit of a stored response body behind the store's back, as an attacker with database access would.
pub(crate) async fn flip_stored_body_byte(backend: Backend, url: &str, id: uuid::Uuid) {
    use sqlx::Connection;
    match backend {
        Backend::Sqlite => {
            let mut connection = sqlx::SqliteConnection::connect(url).await.expect("connect");
            let mut body: Vec<u8> =
                sqlx::query_scalar("SELECT response_body FROM records WHERE id = ?")
                    .bind(id.to_string())
                    .fetch_one(&mut connection)
                    .await
                    .expect("body");
            body[3] ^= 1;
            sqlx::query("UPDATE records SET response_body = ? WHERE id = ?")
                .bind(body)
                .bind(id.to_string())
                .execute(&mut connection)
                .await
                .expect("tamper");
        }
        Backend::Postgres => {
            let mut connection = sqlx::PgConnection::connect(url).await.expect("connect");
            sqlx::query("UPDATE records SET response_body = set_byte(response_body, 3, get_byte(response_body, 3) # 1) WHERE id = $1")
                .bind(id)
                .execute(&mut connection)
                .await
                .expect("tamper");
        }
    }
}

async fn a_byte_changed_in_the_database_breaks_the_seal(backend: Backend) {
    let (store, url, _dir) = open(backend).await;
    let key = handoffrail::records::RecordKey::generate();
    let sealed = key.seal(evidence(
        "t",
        "run",
        "get_order",
        "a",
        1_700_000_000_000_000,
        b"{\"total\": 89.5}",
    ));
    store
        .insert_records(std::slice::from_ref(&sealed))
        .await
        .expect("insert");
    flip_stored_body_byte(backend, &url, sealed.record.id).await;
    let stored = store
        .get_record("t", sealed.record.id)
        .await
        .expect("get")
        .expect("found");
    assert_ne!(
        stored.record.response_body, sealed.record.response_body,
        "the byte really changed"
    );
    assert_eq!(
        key.verify(&stored),
        handoffrail::records::Integrity::DigestMismatch
    );
}

/// An update is one conditional write of the fields it names: concurrent updates of different fields all
/// stick (a read-modify-write would lose all but one), a taken name is refused, a deleted tenant is gone.
async fn tenant_updates_write_only_the_fields_named(backend: Backend) {
    let (store, _, _dir) = open(backend).await;
    let create = |name: &str| TenantCreate {
        name: name.into(),
        tier: "free".into(),
        handoffs_per_day: 5,
        max_api_keys: 5,
    };
    let tenant = Tenant::new(create("acme"), Timestamp::now());
    let other = Tenant::new(create("globex"), Timestamp::now());
    for row in [&tenant, &other] {
        assert_eq!(
            store.insert_tenant(row).await.expect("insert"),
            TenantWrite::Done
        );
    }
    let changes = [
        TenantChanges {
            tier: Some("pro".into()),
            ..TenantChanges::default()
        },
        TenantChanges {
            handoffs_per_day: Some(100),
            ..TenantChanges::default()
        },
        TenantChanges {
            max_api_keys: Some(7),
            ..TenantChanges::default()
        },
        TenantChanges {
            name: Some("acme-2".into()),
            ..TenantChanges::default()
        },
    ];
    let later = Timestamp::from_micros(tenant.created_at.micros() + 1_000_000).expect("time");
    let updates = changes
        .iter()
        .map(|change| store.update_tenant(&tenant.id, change, later));
    for written in futures::future::join_all(updates).await {
        written
            .expect("update")
            .expect("the tenant is live and the name free");
    }
    let stored = store
        .get_tenant(&tenant.id)
        .await
        .expect("get")
        .expect("live");
    assert_eq!(
        (
            stored.name.as_str(),
            stored.tier.as_str(),
            stored.handoffs_per_day,
            stored.max_api_keys
        ),
        ("acme-2", "pro", 100, 7)
    );
    assert_eq!(
        (stored.created_at, stored.updated_at),
        (tenant.created_at, later)
    );

    let taken = TenantChanges {
        name: Some("globex".into()),
        ..TenantChanges::default()
    };
    assert_eq!(
        store
            .update_tenant(&tenant.id, &taken, later)
            .await
            .expect("update"),
        Err(TenantWrite::NameTaken)
    );
    assert_eq!(
        store
            .delete_tenant(&tenant.id, later)
            .await
            .expect("delete"),
        TenantWrite::Done
    );
    assert_eq!(
        store
            .update_tenant(&tenant.id, &changes[0], later)
            .await
            .expect("update"),
        Err(TenantWrite::NotFound)
    );
}

/// One query: the newest `limit` of the tenant's records (of one run, when asked), with bodies and seals,
/// oldest first.
async fn an_export_is_the_newest_records_oldest_first(backend: Backend) {
    let (store, _, _dir) = open(backend).await;
    let key = handoffrail::records::RecordKey::generate();
    let base = 1_700_000_000_000_000;
    let sealed: Vec<_> = [
        evidence("t", "run-1", "get_order", "a", base + 30, b"4"),
        evidence("t", "run-1", "get_order", "a", base, b"1"),
        evidence("t", "run-2", "get_order", "a", base + 20, b"3"),
        evidence("t", "run-1", "get_order", "a", base + 10, b"2"),
        evidence("other", "run-1", "get_order", "a", base + 40, b"5"),
    ]
    .into_iter()
    .map(|record| key.seal(record))
    .collect();
    store.insert_records(&sealed).await.expect("insert");
    let bodies = |records: Vec<handoffrail::records::SealedRecord>| {
        records
            .into_iter()
            .map(|sealed| {
                assert!(key.verify(&sealed).is_valid(), "exported with its seal");
                String::from_utf8(sealed.record.response_body).expect("utf-8")
            })
            .collect::<Vec<_>>()
    };
    let export = |run: Option<&'static str>, limit| {
        let store = store.clone();
        async move { store.export_records("t", run, limit).await.expect("export") }
    };
    assert_eq!(bodies(export(None, 10).await), ["1", "2", "3", "4"]);
    assert_eq!(
        bodies(export(None, 2).await),
        ["3", "4"],
        "the newest, oldest first"
    );
    assert_eq!(bodies(export(Some("run-1"), 10).await), ["1", "2", "4"]);
    assert!(export(Some("run-3"), 10).await.is_empty());
}
