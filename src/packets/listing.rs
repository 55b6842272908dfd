//! What a packet listing asks for (docs/api.md §2.6). Listings are ordered by `created_at` then `id`,
//! newest first, and paged like every listing ([`crate::paging`]).

use super::model::Packet;
use crate::paging::{next_cursor, Cursor, Page};
use crate::timestamp::Timestamp;
use crate::verify::Outcome;

/// Where a packet stands in listings: its creation time and id.
pub fn position(packet: &Packet) -> Cursor {
    Cursor {
        at: packet.created_at,
        id: packet.id,
    }
}

/// The `verification=` filter of listings and search: packets whose claims had this outcome, or (`none`) packets
/// created without claims.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
pub enum VerificationFilter {
    #[serde(rename = "PASS")]
    Pass,
    #[serde(rename = "CAUGHT")]
    Caught,
    #[serde(rename = "ERROR")]
    Error,
    #[serde(rename = "none")]
    None,
}

impl VerificationFilter {
    /// The stored outcome to match; None for packets without claims.
    pub fn outcome(self) -> Option<Outcome> {
        match self {
            VerificationFilter::Pass => Some(Outcome::Pass),
            VerificationFilter::Caught => Some(Outcome::Caught),
            VerificationFilter::Error => Some(Outcome::Error),
            VerificationFilter::None => None,
        }
    }
}

/// Filters of `GET /packets`; every one is applied by the store, so `total` and pages agree.
#[derive(Clone, Debug, Default)]
pub struct PacketQuery {
    /// Any of these; an unknown status simply matches nothing.
    pub statuses: Vec<String>,
    pub source_agent: Option<String>,
    pub target_agent: Option<String>,
    /// All of these.
    pub tags: Vec<String>,
    pub priority: Option<String>,
    pub created_after: Option<Timestamp>,
    pub created_before: Option<Timestamp>,
    pub verification: Option<VerificationFilter>,
    /// Children of this packet (chained from it).
    pub parent: Option<uuid::Uuid>,
    pub page: Page,
}

/// `GET /packets/search`: `text` is plain words (no operators); most relevant first.
#[derive(Clone, Debug, Default)]
pub struct SearchQuery {
    pub text: String,
    pub status: Option<String>,
    pub priority: Option<String>,
    pub verification: Option<VerificationFilter>,
    /// Offset paging only: relevance has no cursor position.
    pub page: Page,
}

impl SearchQuery {
    /// The words of `text` as FTS5 strings ANDed together (`"order" "refund"`), or `None` when it has no
    /// word at all. Every word is quoted, so quotes, dashes, `OR`, `NEAR`, `*` and column filters in the
    /// user's text are searched for as words, never read as query syntax.
    pub fn fts5_words(&self) -> Option<String> {
        let words: Vec<String> = self
            .text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|word| !word.is_empty())
            .map(|word| format!("\"{word}\""))
            .collect();
        (!words.is_empty()).then(|| words.join(" "))
    }
}

/// One page of a listing. `total` counts every match from the cursor on.
#[derive(Clone, Debug, Default)]
pub struct PacketPage {
    pub packets: Vec<Packet>,
    pub total: i64,
    pub has_more: bool,
}

impl PacketPage {
    pub fn next_cursor(&self) -> Option<Cursor> {
        next_cursor(&self.packets, self.has_more, position)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn words(text: &str) -> Option<String> {
        SearchQuery {
            text: text.into(),
            ..SearchQuery::default()
        }
        .fts5_words()
    }

    #[test]
    fn search_text_becomes_quoted_words() {
        assert_eq!(
            words("refund order-42").as_deref(),
            Some(r#""refund" "order" "42""#)
        );
        assert_eq!(
            words(r#"a "quoted" OR NOT x*"#).as_deref(),
            Some(r#""a" "quoted" "OR" "NOT" "x""#)
        );
        assert_eq!(words("Zürich café").as_deref(), Some(r#""Zürich" "café""#));
        assert_eq!(words("-- ** ()"), None);
    }

    proptest! {
        #[test]
        fn quoted_words_hold_no_quote(text in "\\PC{0,40}") {
            if let Some(query) = words(&text) {
                for word in query.split(' ') {
                    prop_assert!(word.len() >= 3 && word.starts_with('"') && word.ends_with('"'));
                    prop_assert!(!word[1..word.len() - 1].contains('"'));
                }
            }
        }
    }
}
