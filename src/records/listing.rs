//! Listing records: metadata only, ordered by start time then id, newest first, paged by cursor like every
//! listing ([`crate::paging`]).

use super::model::Provenance;
use crate::paging::{Cursor, Page};
use crate::timestamp::Timestamp;
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
    /// Cursor paging only.
    pub page: Page,
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

impl RecordSummary {
    /// Where the record stands in listings: its start time and id.
    pub fn position(&self) -> Cursor {
        Cursor {
            at: self.started_at,
            id: self.id,
        }
    }
}
