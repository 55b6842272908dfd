//! Webhooks (docs/api.md §1.2, §6, decisions 1 and 2): what a tenant registers, which events it may ask for,
//! the outbox event a packet change leaves behind, the retry schedule, and the HTTP attempt.
//!
//! Delivery is at least once: a packet change writes one delivery per matching active hook in the same
//! transaction as the change (so an acknowledged change never loses its webhook and a rolled-back one never
//! sends one), already taken for its first attempt by the writing process, which hands it to its delivery
//! worker in memory (`fresh`); the worker (`events::webhooks`) attempts those and takes due deliveries
//! (retries, and first attempts whose lease ran out unattempted) from the database, and records each outcome
//! under the attempt it took, so two workers never both record one attempt.

pub mod attempt;
pub mod dispatch;
pub mod fresh;
pub mod schedule;
pub mod signing;
pub mod ssrf;
pub mod store;

use crate::timestamp::Timestamp;
use serde::{Deserialize, Serialize};
use signing::Secret;
use utoipa::ToSchema;
use uuid::Uuid;

/// What `events` defaults to (docs/api.md §6.1).
pub const DEFAULT_EVENTS: [&str; 4] = [
    "packet.created",
    "packet.claimed",
    "packet.completed",
    "packet.failed",
];

/// Every event a hook may ask for: docs/api.md §6.1's list, and the evaluation events of our extension.
pub const EVENTS: [&str; 11] = [
    "packet.created",
    "packet.claimed",
    "packet.in_progress",
    "packet.awaiting_human",
    "packet.completed",
    "packet.failed",
    "packet.expired",
    "hitl.response_ready",
    "packet.verification_caught",
    "evaluation.completed",
    "evaluation.caught",
];

const MAX_URL_LENGTH: usize = 2048;

/// `POST /hooks`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct WebhookCreate {
    /// `http://` or `https://` and a host, at most 2,048 characters, not an internal address (docs/api.md §6.4).
    /// (Addresses and bracketed IPv6 hosts are accepted too when they are not internal; the pattern shows names.)
    #[schema(
        max_length = 2048,
        pattern = "^[Hh][Tt][Tt][Pp][Ss]?://[a-z][a-z0-9-]*(\\.[a-z][a-z0-9-]*)+(:[1-9][0-9]{0,3})?(/[!-~]*)?$"
    )]
    pub url: String,
    /// Defaults to the four standard events.
    #[serde(default)]
    #[schema(value_type = Option<Vec<WebhookEvent>>)]
    pub events: Option<Vec<String>>,
    /// 16–256 characters; signs every delivery and is never returned.
    #[schema(min_length = 16, max_length = 256)]
    pub secret: String,
}

/// An event a hook may ask for (for the OpenAPI document; registration checks the names against [`EVENTS`]).
#[derive(ToSchema)]
#[allow(dead_code)]
pub enum WebhookEvent {
    #[schema(rename = "packet.created")]
    PacketCreated,
    #[schema(rename = "packet.claimed")]
    PacketClaimed,
    #[schema(rename = "packet.in_progress")]
    PacketInProgress,
    #[schema(rename = "packet.awaiting_human")]
    PacketAwaitingHuman,
    #[schema(rename = "packet.completed")]
    PacketCompleted,
    #[schema(rename = "packet.failed")]
    PacketFailed,
    #[schema(rename = "packet.expired")]
    PacketExpired,
    #[schema(rename = "hitl.response_ready")]
    HitlResponseReady,
    #[schema(rename = "packet.verification_caught")]
    PacketVerificationCaught,
    #[schema(rename = "evaluation.completed")]
    EvaluationCompleted,
    #[schema(rename = "evaluation.caught")]
    EvaluationCaught,
}

/// A registered hook, as the API returns it (the SDK needs all six fields).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Webhook {
    pub id: Uuid,
    pub url: String,
    pub events: Vec<String>,
    pub tenant_id: String,
    pub active: bool,
    pub created_at: Timestamp,
}

/// A registration that passed the checks that need no network (the destination check comes next).
#[derive(Debug)]
pub struct Registration {
    pub url: url::Url,
    pub events: Vec<String>,
    pub secret: Secret,
}

impl Registration {
    pub fn into_webhook(self, tenant: &str, now: Timestamp) -> (Webhook, Secret) {
        let webhook = Webhook {
            id: Uuid::now_v7(),
            url: self.url.to_string(),
            events: self.events,
            tenant_id: tenant.to_string(),
            active: true,
            created_at: now,
        };
        (webhook, self.secret)
    }
}

/// Checks a registration's fields; each problem names its field.
pub fn check(request: WebhookCreate) -> Result<Registration, Vec<(&'static str, String)>> {
    let mut problems = Vec::new();
    let url = match url::Url::parse(request.url.trim()) {
        _ if request.url.len() > MAX_URL_LENGTH => {
            problems.push((
                "url",
                format!("URL must be at most {MAX_URL_LENGTH} characters"),
            ));
            None
        }
        Ok(url) if matches!(url.scheme(), "http" | "https") => {
            match url.host() {
                None => problems.push(("url", "URL must have a hostname".to_string())),
                Some(url::Host::Domain(name)) if !is_host_name(name) => problems.push((
                    "url",
                    "The host must be a name of letters, digits, hyphens and dots, or an address"
                        .to_string(),
                )),
                Some(_) => {}
            }
            if !url.username().is_empty() || url.password().is_some() {
                problems.push(("url", "URL must not carry credentials".to_string()));
            }
            Some(url)
        }
        Ok(_) => {
            problems.push(("url", "URL must start with http:// or https://".to_string()));
            None
        }
        Err(error) => {
            problems.push(("url", format!("Invalid URL: {error}")));
            None
        }
    };
    let events = request
        .events
        .unwrap_or_else(|| DEFAULT_EVENTS.map(String::from).to_vec());
    for event in &events {
        if !EVENTS.contains(&event.as_str()) {
            problems.push((
                "events",
                format!("Unknown event '{event}'. Allowed: {}", EVENTS.join(", ")),
            ));
        }
    }
    let length = request.secret.chars().count();
    if !(16..=256).contains(&length) {
        problems.push(("secret", "Secret must be 16 to 256 characters".to_string()));
    }
    match url {
        Some(url) if problems.is_empty() => Ok(Registration {
            url,
            events: events.into_iter().fold(Vec::new(), |mut unique, event| {
                if !unique.contains(&event) {
                    unique.push(event);
                }
                unique
            }),
            secret: Secret::new(request.secret),
        }),
        _ => Err(problems),
    }
}

/// A DNS name (internationalised names arrive here as `xn--` labels): non-empty labels of letters, digits and
/// hyphens.
fn is_host_name(name: &str) -> bool {
    name.trim_end_matches('.').split('.').all(|label| {
        !label.is_empty()
            && label
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
    })
}

/// What a packet change or an evaluation leaves in the outbox: one event, fanned out to every active hook of
/// its tenant that asked for its name.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxEvent {
    /// `webhook-id` and the body's `id`: the same for every hook and every attempt.
    pub id: Uuid,
    pub name: String,
    pub packet_id: Option<Uuid>,
    /// The exact JSON text every attempt sends and signs.
    pub body: String,
    pub time: Timestamp,
}

/// Delivery states (docs/api.md §6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Not attempted yet.
    Pending,
    Delivered,
    /// Attempted, failed, to be retried at `next_retry_at`.
    Failed,
    /// Every attempt failed (or the receiver said 410 Gone); replay or retry-all sends it again.
    DeadLetter,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::DeadLetter => "dead_letter",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            DeliveryStatus::Pending,
            DeliveryStatus::Delivered,
            DeliveryStatus::Failed,
            DeliveryStatus::DeadLetter,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }
}

/// One event on its way to one hook (`GET /hooks/{id}/deliveries`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Delivery {
    pub id: Uuid,
    pub webhook_id: Uuid,
    /// The event's id (`webhook-id`).
    pub event_id: Uuid,
    pub packet_id: Option<Uuid>,
    pub event_type: String,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub last_status_code: Option<i64>,
    pub next_retry_at: Option<Timestamp>,
    pub delivered_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A dead letter (`GET /hooks/dlq`): a delivery without its schedule.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct DeadLetter {
    pub id: Uuid,
    pub webhook_id: Uuid,
    pub event_id: Uuid,
    pub packet_id: Option<Uuid>,
    pub event_type: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub last_status_code: Option<i64>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<Delivery> for DeadLetter {
    fn from(delivery: Delivery) -> Self {
        DeadLetter {
            id: delivery.id,
            webhook_id: delivery.webhook_id,
            event_id: delivery.event_id,
            packet_id: delivery.packet_id,
            event_type: delivery.event_type,
            attempts: delivery.attempts,
            last_error: delivery.last_error,
            last_status_code: delivery.last_status_code,
            created_at: delivery.created_at,
            updated_at: delivery.updated_at,
        }
    }
}

/// A delivery a worker took for one attempt, with what the attempt needs.
#[derive(Clone, Debug)]
pub struct TakenDelivery {
    pub id: Uuid,
    pub webhook_id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    pub body: String,
    /// The attempt this is (1 for the first); recording the outcome names it.
    pub attempt: i64,
    pub url: String,
    pub secret: Secret,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(url: &str, events: Option<Vec<&str>>, secret: &str) -> WebhookCreate {
        WebhookCreate {
            url: url.into(),
            events: events.map(|events| events.into_iter().map(String::from).collect()),
            secret: secret.into(),
        }
    }

    #[test]
    fn registrations_are_checked_field_by_field() {
        let ok = check(request(
            "https://hooks.example.com/x",
            None,
            "0123456789abcdef",
        ))
        .unwrap();
        assert_eq!(ok.events, DEFAULT_EVENTS.to_vec());
        let ok = check(request(
            "https://h.example/x",
            Some(vec![
                "packet.expired",
                "evaluation.caught",
                "packet.expired",
            ]),
            "0123456789abcdef",
        ))
        .unwrap();
        assert_eq!(ok.events, vec!["packet.expired", "evaluation.caught"]);
        let problems =
            check(request("ftp://x/", Some(vec!["packet.updated"]), "short")).unwrap_err();
        let fields: Vec<_> = problems.iter().map(|(field, _)| *field).collect();
        assert_eq!(fields, vec!["url", "events", "secret"]);
        assert!(check(request("https://u:p@h.example/", None, "0123456789abcdef")).is_err());
        assert!(check(request("http://host*.example/", None, "0123456789abcdef")).is_err());
        assert!(check(request("http://a..b/", None, "0123456789abcdef")).is_err());
        assert!(check(request("http://bücher.example/", None, "0123456789abcdef")).is_ok());
        assert!(check(request(
            "http://[2001:db8::1]:8443/x",
            None,
            "0123456789abcdef"
        ))
        .is_ok());
        let long = format!("https://h.example/{}", "a".repeat(2048));
        assert!(check(request(&long, None, "0123456789abcdef")).is_err());
        assert!(check(request("https://h.example/", None, &"s".repeat(257))).is_err());
        assert!(check(request(
            "https://h.example/",
            Some(vec![]),
            "0123456789abcdef"
        ))
        .is_ok());
    }
}
