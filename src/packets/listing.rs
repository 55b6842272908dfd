//! What a packet listing asks for, and the opaque cursor that continues it (docs/api.md §2.6).
//!
//! Listings are ordered by `created_at` then `id`, newest first. The cursor is the position of the last
//! packet of a page: base64url (unpadded) of `{"created_at": ..., "id": ...}`.

use super::model::Packet;
use crate::timestamp::Timestamp;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub created_at: Timestamp,
    pub id: Uuid,
}

impl Cursor {
    pub fn after(packet: &Packet) -> Self {
        Self {
            created_at: packet.created_at,
            id: packet.id,
        }
    }

    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(json)
    }

    pub fn decode(text: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()?;
        serde_json::from_slice(&bytes).ok()
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
    pub cursor: Option<Cursor>,
    pub limit: i64,
    /// Ignored when a cursor is given.
    pub offset: i64,
}

/// `GET /packets/search`: `text` is plain words (no operators); most relevant first.
#[derive(Clone, Debug, Default)]
pub struct SearchQuery {
    pub text: String,
    pub status: Option<String>,
    pub priority: Option<String>,
    pub limit: i64,
    pub offset: i64,
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
        if self.has_more {
            self.packets.last().map(Cursor::after)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let cursor = Cursor {
            created_at: Timestamp::now(),
            id: Uuid::new_v4(),
        };
        assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        for garbage in ["", "!!!", "bm90IGpzb24", "eyJpZCI6MX0"] {
            assert_eq!(Cursor::decode(garbage), None, "{garbage}");
        }
    }

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
