//! Paging, the same for every listing (docs/api.md §2.6): a `limit` (1–200, 50 by default) and either an
//! `offset` or a `cursor`. Listings are ordered by a time and then the id, newest first; the cursor is the
//! position of the last item of a page, base64url (unpadded) of `{"at": ..., "id": ...}`, and a page asked
//! with a cursor starts right after it (an offset is then ignored).

use crate::timestamp::Timestamp;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 200;

/// Where a listing continues: after the item with this time and id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The ordering time (a packet's `created_at`, a record's `started_at`, …). Cursors issued before the
    /// listings shared one type named it after the field; they still decode.
    #[serde(alias = "created_at", alias = "started_at")]
    pub at: Timestamp,
    pub id: Uuid,
}

impl Cursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    pub fn decode(text: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// Which part of a listing to return.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    pub limit: i64,
    pub offset: i64,
    pub cursor: Option<Cursor>,
}

impl Default for Page {
    fn default() -> Self {
        Page {
            limit: DEFAULT_LIMIT,
            offset: 0,
            cursor: None,
        }
    }
}

impl Page {
    pub fn first(limit: i64) -> Self {
        Page {
            limit,
            ..Page::default()
        }
    }

    /// Rows to skip: none after a cursor.
    pub fn skipped(&self) -> i64 {
        if self.cursor.is_some() {
            0
        } else {
            self.offset
        }
    }

    /// Rows to read: one beyond the limit tells whether more follow.
    pub fn probe(&self) -> i64 {
        self.limit.saturating_add(1)
    }

    /// Cuts `items` read with [`Self::probe`] to the limit; whether more follow.
    pub fn cut<T>(&self, items: &mut Vec<T>) -> bool {
        let limit = usize::try_from(self.limit.max(0)).unwrap_or(usize::MAX);
        let more = items.len() > limit;
        items.truncate(limit);
        more
    }
}

/// The cursor after the last of `items` when more follow.
pub fn next_cursor<T>(
    items: &[T],
    has_more: bool,
    position: impl Fn(&T) -> Cursor,
) -> Option<Cursor> {
    has_more.then(|| items.last().map(position)).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let cursor = Cursor {
            at: Timestamp::now(),
            id: Uuid::new_v4(),
        };
        assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        for garbage in ["", "!!!", "bm90IGpzb24", "eyJpZCI6MX0"] {
            assert_eq!(Cursor::decode(garbage), None, "{garbage}");
        }
    }

    #[test]
    fn cursors_issued_with_named_times_still_decode() {
        let id = Uuid::new_v4();
        for field in ["created_at", "started_at"] {
            let old = serde_json::json!({field: "2026-01-02T03:04:05.000006Z", "id": id});
            let text = URL_SAFE_NO_PAD.encode(old.to_string());
            let cursor = Cursor::decode(&text).expect("an old cursor decodes");
            assert_eq!((cursor.at.micros() % 1_000_000, cursor.id), (6, id));
        }
    }

    #[test]
    fn a_page_reads_one_more_and_cuts_it() {
        let page = Page::first(2);
        let mut items = vec![1, 2, 3];
        assert_eq!(page.probe(), 3);
        assert!(page.cut(&mut items));
        assert_eq!(items, [1, 2]);
        assert!(!page.cut(&mut items));
        let after = Page {
            offset: 5,
            cursor: Some(Cursor {
                at: Timestamp::now(),
                id: Uuid::nil(),
            }),
            ..page
        };
        assert_eq!((page.skipped(), after.skipped()), (0, 0));
        assert_eq!(Page { offset: 5, ..page }.skipped(), 5);
    }
}
