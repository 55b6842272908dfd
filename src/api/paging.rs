//! Reading the page a listing asks for (docs/api.md §2.6), the same for every list route.

use super::error::{Error, Invalid};
use super::extract::non_empty;
use crate::paging::{Cursor, Page, DEFAULT_LIMIT, MAX_LIMIT};
use serde::Deserialize;
use utoipa::IntoParams;

/// `limit` (1–200, default 50) and `offset` of a page, for listings paged by offset alone.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct PageParams {
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    #[param(minimum = 0)]
    pub offset: Option<i64>,
}

impl PageParams {
    pub fn page(self) -> Result<Page, Error> {
        page(self.limit, self.offset, None)
    }
}

/// The page asked for: `limit` in 1..=200 (50 when absent) and `offset` ≥ 0 (0 when absent), else 422; a
/// `cursor` this server issued, else 400 "Invalid cursor" (an empty one counts as absent).
pub(super) fn page(
    limit: Option<i64>,
    offset: Option<i64>,
    cursor: Option<String>,
) -> Result<Page, Error> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    let offset = offset.unwrap_or(0);
    let mut issues = Vec::new();
    if limit < 1 {
        issues.push(Invalid::query(
            "limit",
            "greater_than_equal",
            "Input should be greater than or equal to 1",
            &limit.to_string(),
        ));
    } else if limit > MAX_LIMIT {
        issues.push(Invalid::query(
            "limit",
            "less_than_equal",
            "Input should be less than or equal to 200",
            &limit.to_string(),
        ));
    }
    if offset < 0 {
        issues.push(Invalid::query(
            "offset",
            "greater_than_equal",
            "Input should be greater than or equal to 0",
            &offset.to_string(),
        ));
    }
    if !issues.is_empty() {
        return Err(Error::Validation(issues));
    }
    let cursor = match non_empty(cursor) {
        Some(text) => {
            Some(Cursor::decode(&text).ok_or_else(|| Error::BadRequest("Invalid cursor".into()))?)
        }
        None => None,
    };
    Ok(Page {
        limit,
        offset,
        cursor,
    })
}
