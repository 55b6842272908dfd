//! Listing records: metadata only, newest first, with an opaque cursor (base64url of the last record's
//! start time and id, like packet listings).

use super::model::Provenance;
use crate::timestamp::Timestamp;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Clone, Debug, Default)]
pub struct RecordQuery {
    pub run_id: Option<String>,
    pub agent_id: Option<String>,
    pub action: Option<String>,
    /// Lower-case host name.
    pub host: Option<String>,
    pub status: Option<u16>,
    pub cursor: Option<RecordCursor>,
    pub limit: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordCursor {
    pub started_at: Timestamp,
    pub id: Uuid,
}

impl RecordCursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    pub fn decode(text: &str) -> Option<RecordCursor> {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()?).ok()
    }
}

/// What a listing shows of a record: no headers, no bodies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RecordSummary {
    pub id: Uuid,
    pub run_id: Option<String>,
    pub agent_id: Option<String>,
    pub action: Option<String>,
    pub method: String,
    pub url: String,
    pub host: String,
    pub status: Option<u16>,
    pub provenance: Provenance,
    pub trusted: bool,
    pub started_at: Timestamp,
    pub response_body_size: u64,
    pub response_truncated: bool,
    pub upstream_error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let cursor = RecordCursor {
            started_at: Timestamp::now(),
            id: Uuid::now_v7(),
        };
        assert_eq!(RecordCursor::decode(&cursor.encode()), Some(cursor));
        assert_eq!(RecordCursor::decode("nope"), None);
    }
}
