//! Live events (docs/api.md §7, decision 3): who is connected, what each subscriber asked for, and the
//! frames they are sent. The store delivers every committed event of every tenant (on PostgreSQL from every
//! instance); each connection takes them from its own bounded buffer, keeps its tenant's, filters them by its
//! channels and writes them out. A subscriber that falls a whole buffer behind is dropped with a reason, so it
//! never slows the writers or anyone else.

use crate::announce::LiveNotice;
use crate::auth::limits::TierTable;
use crate::auth::Tier;
use crate::timestamp::Timestamp;
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a dropped slow subscriber is told.
pub const TOO_SLOW: &str = "Subscriber too slow: events were dropped; reconnect";

/// One subscription channel (docs/api.md §7.1): `status:<status>`, `packet:<id>` or `agent:<agent id>`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Channel {
    Status(String),
    Packet(String),
    Agent(String),
}

impl Channel {
    /// A channel, or None for kinds the protocol does not know (they are ignored).
    pub fn parse(text: &str) -> Option<Self> {
        let (kind, value) = text.split_once(':')?;
        let value = value.to_string();
        match kind {
            "status" => Some(Channel::Status(value)),
            "packet" => Some(Channel::Packet(value)),
            "agent" => Some(Channel::Agent(value)),
            _ => None,
        }
    }
}

/// The channels a connection subscribed to; with none, it receives every event of its tenant.
#[derive(Clone, Debug, Default)]
pub struct Subscription {
    channels: BTreeSet<Channel>,
    /// Channel texts as given (for the SSE greeting).
    named: Vec<String>,
}

impl Subscription {
    pub fn add(&mut self, text: &str) {
        if let Some(channel) = Channel::parse(text) {
            self.channels.insert(channel);
        }
        if !self.named.iter().any(|named| named == text) {
            self.named.push(text.to_string());
        }
    }

    pub fn remove(&mut self, text: &str) {
        if let Some(channel) = Channel::parse(text) {
            self.channels.remove(&channel);
        }
        self.named.retain(|named| named != text);
    }

    pub fn named(&self) -> &[String] {
        &self.named
    }

    /// Whether `notice` (already known to be of this connection's tenant) goes to this subscriber.
    pub fn admits(&self, notice: &LiveNotice) -> bool {
        if self.channels.is_empty() {
            return true;
        }
        self.channels.iter().any(|channel| match channel {
            Channel::Status(status) => *status == notice.status,
            Channel::Packet(id) => notice
                .packet_id
                .is_some_and(|packet| id.eq_ignore_ascii_case(&packet.to_string())),
            Channel::Agent(agent) => notice.agents.iter().any(|id| id == agent),
        })
    }
}

/// Open live connections by tenant, capped by the key's tier.
pub struct Connections {
    caps: TierTable,
    by_tenant: Mutex<HashMap<String, usize>>,
    total: AtomicUsize,
    pub heartbeat: Duration,
}

impl Connections {
    pub fn new(caps: TierTable, heartbeat: Duration) -> Self {
        Self {
            caps,
            by_tenant: Mutex::new(HashMap::new()),
            total: AtomicUsize::new(0),
            heartbeat,
        }
    }

    /// A place for one more connection of `tenant`, or None when the cap of the key's `tier` is reached.
    pub fn open(self: &Arc<Self>, tenant: &str, tier: Tier) -> Option<Connection> {
        let cap = usize::try_from(self.caps.get(tier)).unwrap_or(usize::MAX);
        let mut by_tenant = self
            .by_tenant
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let open = by_tenant.entry(tenant.to_string()).or_default();
        if *open >= cap {
            return None;
        }
        *open += 1;
        self.total.fetch_add(1, Ordering::Relaxed);
        Some(Connection {
            connections: self.clone(),
            tenant: tenant.to_string(),
            tier,
            id: uuid::Uuid::new_v4(),
        })
    }

    pub fn of_tenant(&self, tenant: &str) -> usize {
        let by_tenant = self
            .by_tenant
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        by_tenant.get(tenant).copied().unwrap_or(0)
    }

    pub fn total(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }
}

/// One open connection; closing it (dropping this) frees its place.
pub struct Connection {
    connections: Arc<Connections>,
    pub tenant: String,
    pub tier: Tier,
    pub id: uuid::Uuid,
}

impl Connection {
    /// Whether `notice` belongs to this connection's tenant and its subscription takes it.
    pub fn wants(&self, subscription: &Subscription, notice: &LiveNotice) -> bool {
        notice.tenant == self.tenant && subscription.admits(notice)
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let mut by_tenant = self
            .connections
            .by_tenant
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(open) = by_tenant.get_mut(&self.tenant) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                by_tenant.remove(&self.tenant);
            }
        }
        self.connections.total.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A heartbeat frame (`ping` from the server).
pub fn heartbeat() -> Value {
    json!({"type": "ping", "timestamp": Timestamp::now()})
}

/// The answer to a WebSocket client's message (docs/api.md §7.1), if any.
pub fn answer(subscription: &mut Subscription, message: &str) -> Option<Value> {
    let Ok(request) = serde_json::from_str::<Value>(message) else {
        return Some(json!({"type": "error", "message": "Invalid JSON"}));
    };
    let action = request
        .get("action")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let channel = request
        .get("channel")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match action {
        "subscribe" if !channel.is_empty() => {
            subscription.add(channel);
            Some(json!({"type": "subscribed", "channel": channel}))
        }
        "unsubscribe" if !channel.is_empty() => {
            subscription.remove(channel);
            Some(json!({"type": "unsubscribed", "channel": channel}))
        }
        "subscribe" | "unsubscribe" => None,
        "ping" => Some(json!({"type": "pong", "timestamp": Timestamp::now()})),
        other => Some(json!({"type": "error", "message": format!("Unknown action: {other}")})),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(status: &str, source: &str, target: &str) -> LiveNotice {
        LiveNotice {
            tenant: "t".into(),
            kind: format!("packet.{status}"),
            packet_id: Some(uuid::Uuid::nil()),
            status: status.into(),
            agents: vec![source.into(), target.into()],
            envelope: "{}".into(),
            fallback: None,
            details: Default::default(),
            at: Timestamp::now(),
        }
    }

    #[test]
    fn channels_select_by_status_packet_or_agent() {
        let mut subscription = Subscription::default();
        assert!(
            subscription.admits(&notice("created", "a", "b")),
            "no channel: everything"
        );
        subscription.add("status:claimed");
        subscription.add("agent:planner");
        subscription.add("weather:today");
        assert!(subscription.admits(&notice("claimed", "a", "b")));
        assert!(subscription.admits(&notice("created", "planner", "b")));
        assert!(subscription.admits(&notice("created", "a", "planner")));
        assert!(!subscription.admits(&notice("created", "a", "b")));
        subscription.add(&format!("packet:{}", uuid::Uuid::nil()));
        assert!(subscription.admits(&notice("created", "a", "b")));
        subscription.remove(&format!("packet:{}", uuid::Uuid::nil()));
        subscription.remove("agent:planner");
        assert!(!subscription.admits(&notice("created", "planner", "b")));
        assert_eq!(subscription.named(), ["status:claimed", "weather:today"]);
    }

    #[test]
    fn client_messages_are_answered_as_the_protocol_says() {
        let mut subscription = Subscription::default();
        assert_eq!(
            answer(
                &mut subscription,
                r#"{"action": "subscribe", "channel": "status:claimed"}"#
            ),
            Some(json!({"type": "subscribed", "channel": "status:claimed"}))
        );
        assert_eq!(
            answer(&mut subscription, "not json"),
            Some(json!({"type": "error", "message": "Invalid JSON"}))
        );
        assert_eq!(
            answer(&mut subscription, r#"{"action": "dance"}"#),
            Some(json!({"type": "error", "message": "Unknown action: dance"}))
        );
        assert_eq!(
            answer(&mut subscription, r#"{"action": "subscribe"}"#),
            None
        );
        let pong = answer(&mut subscription, r#"{"action": "ping"}"#).expect("pong");
        assert_eq!(pong["type"], "pong");
        assert_eq!(
            answer(
                &mut subscription,
                r#"{"action": "unsubscribe", "channel": "status:claimed"}"#
            ),
            Some(json!({"type": "unsubscribed", "channel": "status:claimed"}))
        );
        assert!(subscription.named().is_empty());
    }

    #[test]
    fn each_tenant_has_its_tiers_number_of_places() {
        let connections = Arc::new(Connections::new(
            TierTable {
                free: 1,
                pro: 5,
                business: 25,
            },
            Duration::from_secs(30),
        ));
        let first = connections.open("a", Tier::Free).expect("one place");
        assert!(connections.open("a", Tier::Free).is_none(), "free: one");
        let other = connections.open("b", Tier::Free).expect("another tenant");
        assert_eq!(connections.total(), 2);
        drop(first);
        assert_eq!(connections.of_tenant("a"), 0);
        assert!(connections.open("a", Tier::Free).is_some());
        drop(other);
    }
}
