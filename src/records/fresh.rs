//! Reading a record whose id was just handed out (docs/evaluator.md "Evidence freshness"): the proxy answers
//! with `X-HandoffRail-Record` before the recorder's batch reaches the database, so a record id minted in the
//! last few seconds is waited for briefly before it is called missing. The evaluator and the records API read
//! through this alike.

use super::store::RecordStore;
use super::SealedRecord;
use crate::persistence::StoreError;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How recently an id must have been minted to be waited for.
const FRESH: Duration = Duration::from_secs(5);
/// The longest wait for one.
const FRESH_WAIT: Duration = Duration::from_secs(2);
const FRESH_POLL: Duration = Duration::from_millis(50);

/// The record `id` of `tenant`, waiting up to two seconds for an id minted in the last five.
pub async fn get_record_fresh(
    store: &dyn RecordStore,
    tenant: &str,
    id: Uuid,
) -> Result<Option<SealedRecord>, StoreError> {
    let deadline = Instant::now() + FRESH_WAIT;
    loop {
        if let Some(record) = store.get_record(tenant, id).await? {
            return Ok(Some(record));
        }
        if !minted_recently(&id) || Instant::now() >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(FRESH_POLL).await;
    }
}

/// Whether `id` (a version 7 UUID, as record ids are) carries a time within [`FRESH`] of now.
fn minted_recently(id: &Uuid) -> bool {
    let Some(timestamp) = id.get_timestamp() else {
        return false;
    };
    let (seconds, nanos) = timestamp.to_unix();
    let minted = Duration::new(seconds, nanos);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    now.checked_sub(minted).is_some_and(|age| age <= FRESH)
        || minted.checked_sub(now).is_some_and(|ahead| ahead <= FRESH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_recent_version_7_ids_are_waited_for() {
        assert!(minted_recently(&Uuid::now_v7()));
        assert!(!minted_recently(&Uuid::new_v4()), "no time in it");
        let old = Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, 1_000_000, 0));
        assert!(!minted_recently(&old));
    }
}
