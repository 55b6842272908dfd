//! PostgreSQL carries live events between instances: a write `NOTIFY`s its live notice in its own transaction,
//! and every instance (the writer's included) `LISTEN`s and hands what it hears to its subscribers.

use super::database::{Pools, SqlStore};
use crate::announce::LiveNotice;
use crate::packets::notices::rebuild;
use crate::packets::store::PacketStore;
use sqlx::postgres::{PgListener, PgPool};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

/// The channel live events cross instances on.
pub(crate) const LIVE_CHANNEL: &str = "handoffrail_live";
/// PostgreSQL refuses a `NOTIFY` payload of 8,000 bytes or more.
const LARGEST_NOTIFICATION: usize = 7_900;

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
pub(crate) fn listen_for_live_events(pool: PgPool, live: broadcast::Sender<Arc<LiveNotice>>) {
    tokio::spawn(async move {
        // Reads packets only; its own live channel is never used.
        let reader = SqlStore::new(Pools::Postgres(pool.clone()), 1);
        loop {
            let mut listener = match PgListener::connect_with(&pool).await {
                Ok(listener) => listener,
                Err(error) => {
                    tracing::warn!(%error, "live events: cannot connect to listen; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if let Err(error) = listener.listen(LIVE_CHANNEL).await {
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
