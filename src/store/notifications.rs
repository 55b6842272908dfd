//! PostgreSQL carries live events between instances: a write `NOTIFY`s its live notice in its own transaction,
//! and every instance (the writer's included) `LISTEN`s and hands what it hears to its subscribers.

use super::database::{Pools, SqlStore};
use super::StoreOptions;
use crate::announce::LiveNotice;
use crate::packets::notices::rebuild;
use crate::packets::store::PacketStore;
use crate::records::canonical::hex;
use sha2::{Digest, Sha256};
use sqlx::postgres::{PgListener, PgPool};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

/// What every live-event channel's name starts with.
const LIVE_CHANNEL_PREFIX: &str = "handoffrail_live.";
/// PostgreSQL's longest identifier, in bytes (`NAMEDATALEN - 1`); `pg_notify` refuses a longer channel.
const LONGEST_CHANNEL: usize = 63;
/// PostgreSQL refuses a `NOTIFY` payload of 8,000 bytes or more.
const LARGEST_NOTIFICATION: usize = 7_900;

/// The channel the live events of the deployment whose tables are in `pool`'s schema cross instances on:
/// one per schema, so that deployments sharing a database, each in its own schema, never hear each other
/// (`NOTIFY` reaches every listener of the database).
pub(crate) async fn live_channel(pool: &PgPool) -> Result<String, sqlx::Error> {
    let schema: Option<String> = sqlx::query_scalar("SELECT current_schema()")
        .fetch_one(pool)
        .await?;
    Ok(channel_for(schema.as_deref().unwrap_or_default()))
}

/// `handoffrail_live.<schema>`, or, where that is too long for PostgreSQL, the schema's hash in its place.
fn channel_for(schema: &str) -> String {
    let channel = format!("{LIVE_CHANNEL_PREFIX}{schema}");
    if channel.len() <= LONGEST_CHANNEL {
        return channel;
    }
    let digest = hex(&Sha256::digest(schema.as_bytes()));
    format!(
        "{LIVE_CHANNEL_PREFIX}{}",
        &digest[..LONGEST_CHANNEL - LIVE_CHANNEL_PREFIX.len()]
    )
}

/// A live notice as a `NOTIFY` payload: whole when it fits, else without its envelope (the receiving instance
/// uses the fallback envelope or rebuilds it from the packet), and without its details if even that does not
/// fit.
pub(crate) fn notification(live: &LiveNotice) -> String {
    let whole = serde_json::to_string(live).unwrap_or_default();
    if whole.len() < LARGEST_NOTIFICATION {
        return whole;
    }
    let mut reference = LiveNotice {
        envelope: String::new(),
        ..live.clone()
    };
    let text = serde_json::to_string(&reference).unwrap_or_default();
    if text.len() < LARGEST_NOTIFICATION {
        return text;
    }
    reference.details.clear();
    serde_json::to_string(&reference).unwrap_or_default()
}

/// Forwards every instance's live events (this one's included) from `LISTEN` to `live`, until the process
/// ends. A notice that came without its envelope gets it rebuilt from the packet.
pub(crate) fn listen_for_live_events(
    pool: PgPool,
    channel: String,
    live: broadcast::Sender<Arc<LiveNotice>>,
) {
    tokio::spawn(async move {
        // Reads packets only; its own live channel is never used.
        let options = StoreOptions {
            live_buffer: 1,
            ..StoreOptions::default()
        };
        let reader = SqlStore::new(Pools::Postgres(pool.clone()), &options);
        loop {
            let mut listener = match PgListener::connect_with(&pool).await {
                Ok(listener) => listener,
                Err(error) => {
                    tracing::warn!(%error, "live events: cannot connect to listen; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if let Err(error) = listener.listen(&channel).await {
                tracing::warn!(%error, "live events: LISTEN failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            loop {
                let notification = match listener.recv().await {
                    Ok(notification) => notification,
                    Err(error) => {
                        tracing::warn!(%error, "live events: the listening connection failed");
                        break;
                    }
                };
                let mut notice: LiveNotice = match serde_json::from_str(notification.payload()) {
                    Ok(notice) => notice,
                    Err(error) => {
                        tracing::warn!(%error, "live events: a notification that is not a live notice");
                        continue;
                    }
                };
                if notice.envelope.is_empty() {
                    if let Some(fallback) = notice.fallback.take() {
                        notice.envelope = fallback;
                    } else if let Some(packet_id) = notice.packet_id {
                        match reader.get_packet(&notice.tenant, packet_id).await {
                            Ok(Some(stored)) => rebuild(&mut notice, &stored.packet),
                            _ => continue,
                        }
                    } else {
                        continue;
                    }
                }
                let _ = live.send(Arc::new(notice));
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timestamp::Timestamp;
    use uuid::Uuid;

    fn notice(envelope_bytes: usize, details_bytes: usize) -> LiveNotice {
        let mut details = serde_json::Map::new();
        details.insert("hitl_response".into(), "r".repeat(details_bytes).into());
        LiveNotice {
            tenant: "t".into(),
            kind: "packet.claimed".into(),
            packet_id: Some(Uuid::nil()),
            status: "claimed".into(),
            agents: vec!["a".into(), "b".into()],
            envelope: "e".repeat(envelope_bytes),
            fallback: None,
            details,
            at: Timestamp::now(),
        }
    }

    #[test]
    fn each_schema_has_its_own_channel_within_postgres_limit() {
        assert_eq!(channel_for("public"), "handoffrail_live.public");
        let long = "s".repeat(63);
        let hashed = channel_for(&long);
        assert_eq!(hashed.len(), LONGEST_CHANNEL);
        assert!(hashed.starts_with(LIVE_CHANNEL_PREFIX));
        assert_ne!(hashed, channel_for(&"t".repeat(63)));
    }

    #[test]
    fn notifications_always_fit_postgres_limit() {
        let small = notice(100, 10);
        assert_eq!(
            serde_json::from_str::<LiveNotice>(&notification(&small)).expect("notice"),
            small
        );
        let large_envelope: LiveNotice =
            serde_json::from_str(&notification(&notice(20_000, 10))).expect("notice");
        assert!(
            large_envelope.envelope.is_empty(),
            "rebuilt by the receiver"
        );
        assert_eq!(large_envelope.details.len(), 1);
        let everything_large = notification(&notice(20_000, 20_000));
        assert!(everything_large.len() < LARGEST_NOTIFICATION);
        let reference: LiveNotice = serde_json::from_str(&everything_large).expect("notice");
        assert!(reference.details.is_empty());
    }
}
