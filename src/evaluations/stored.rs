//! An evaluation as stored and returned (docs/evaluator.md "Result").

use crate::timestamp::Timestamp;
use crate::verify::{ClaimResult, Counts, Outcome};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StoredEvaluation {
    pub id: Uuid,
    pub run_id: Option<String>,
    pub agent_id: Option<String>,
    pub outcome: Outcome,
    pub counts: Counts,
    pub per_claim: Vec<ClaimResult>,
    pub errors: Vec<String>,
    pub created_at: Timestamp,
    pub duration_ms: f64,
    /// The packet whose claims these were (docs/api.md decision 12); a packet refused under `reject` was never
    /// stored. Absent for an evaluation requested on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packet_id: Option<Uuid>,
}

/// Filters of `GET /evaluations`: newest first (creation time, then id), paged by cursor.
#[derive(Clone, Debug, Default)]
pub struct EvaluationQuery {
    pub run_id: Option<String>,
    pub agent_id: Option<String>,
    pub outcome: Option<Outcome>,
    pub page: crate::paging::Page,
}

impl StoredEvaluation {
    /// Where the evaluation stands in listings.
    pub fn position(&self) -> crate::paging::Cursor {
        crate::paging::Cursor {
            at: self.created_at,
            id: self.id,
        }
    }
}

/// The payload as kept: the known fields, with every secret-looking key removed at any depth, so
/// credentials that SourceryKit-shaped payloads carry (`integration_api_key`, …) are never stored.
pub fn storable_payload(payload: &Value) -> Value {
    let mut kept = serde_json::Map::new();
    if let Some(object) = payload.as_object() {
        for field in ["run_id", "agent_id", "answer", "reasoning", "claims"] {
            if let Some(value) = object.get(field) {
                kept.insert(field.to_string(), without_secrets(value));
            }
        }
    }
    Value::Object(kept)
}

fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    [
        "key",
        "secret",
        "token",
        "password",
        "authorization",
        "credential",
        "cookie",
    ]
    .iter()
    .any(|word| key.contains(word))
}

fn without_secrets(value: &Value) -> Value {
    match value {
        Value::Object(object) => Value::Object(
            object
                .iter()
                .filter(|(key, _)| !is_secret(key))
                .map(|(key, value)| (key.clone(), without_secrets(value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_secrets).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stored_floats_read_back_exactly() {
        // Parsing must be correctly rounded (serde_json's `float_roundtrip`), or a stored verdict would not
        // read back as it was returned.
        for value in [13.91186_f64, 0.1, 2.0 / 3.0, 1e-7, 123456.789012345] {
            let text = serde_json::to_string(&value).expect("serialise");
            let back: f64 = serde_json::from_str(&text).expect("parse");
            assert_eq!(back.to_bits(), value.to_bits(), "{text}");
        }
    }

    #[test]
    fn secrets_never_reach_the_stored_payload() {
        let payload = json!({
            "run_id": "r", "provably_org_id": "org", "integration_api_key": "sk_live_123",
            "claims": [{"action_name": "a", "api_key": "x", "claimed_value": {"token": "t", "v": 1}, "sourcerykit_ref": "rec"}],
            "answer": "done"
        });
        let stored = storable_payload(&payload);
        let text = stored.to_string();
        for secret in ["sk_live_123", "integration_api_key", "api_key", "\"token\""] {
            assert!(!text.contains(secret), "{secret} leaked into {text}");
        }
        assert_eq!(stored["claims"][0]["sourcerykit_ref"], "rec");
        assert_eq!(stored["claims"][0]["claimed_value"], json!({"v": 1}));
        assert_eq!(stored["answer"], "done");
        assert!(
            stored.get("provably_org_id").is_none(),
            "unknown keys are not kept"
        );
    }
}
