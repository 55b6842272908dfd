//! A short-lived cache of authenticated keys, so a request costs no database read for its key.
//!
//! Entries live `ttl` (default 5 s); revoking or rotating a key clears this instance's cache at once, so
//! on one instance a revoked key stops working immediately and on others within `ttl`. Unknown keys are
//! never cached: a key created a moment ago works on every instance.

use super::store::KeyStore;
use super::ApiKey;
use crate::persistence::{DatabaseHealth, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// More distinct keys than this within one TTL means something is wrong; start over rather than grow.
const MAX_ENTRIES: usize = 10_000;
/// While the database cannot be asked, a key seen this recently is taken as it was then, so that the proxy
/// keeps serving (records spooled) through an outage. Revocations made elsewhere during the outage take
/// effect once the database answers.
const STALE_IF_UNAVAILABLE: Duration = Duration::from_secs(3600);

pub struct KeyCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (ApiKey, Instant)>>,
    /// While the database is known to be down, keys come from the stale entries without asking it.
    database: Arc<DatabaseHealth>,
}

impl KeyCache {
    pub fn new(ttl: Duration, database: Arc<DatabaseHealth>) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
            database,
        }
    }

    pub fn get(&self, key_hash: &str) -> Option<ApiKey> {
        if self.ttl.is_zero() {
            return None;
        }
        self.seen_within(key_hash, self.ttl)
    }

    /// The cached key, if it was stored less than `max_age` ago.
    fn seen_within(&self, key_hash: &str, max_age: Duration) -> Option<ApiKey> {
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        entries
            .get(key_hash)
            .filter(|(_, stored)| stored.elapsed() < max_age)
            .map(|(key, _)| key.clone())
    }

    pub fn put(&self, key_hash: String, key: ApiKey) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key_hash, (key, Instant::now()));
    }

    /// The key `presented` (a plaintext API key) belongs to, from the cache or the store; `None` when unknown.
    pub async fn find(
        &self,
        store: &dyn KeyStore,
        presented: &str,
    ) -> Result<Option<ApiKey>, StoreError> {
        self.find_hashed(store, &super::hash_key(presented)).await
    }

    /// The key whose SHA-256 is `key_hash`, from the cache or the store: how a CONNECT tunnel re-checks the
    /// key it was opened with, without keeping the plaintext.
    pub async fn find_hashed(
        &self,
        store: &dyn KeyStore,
        key_hash: &str,
    ) -> Result<Option<ApiKey>, StoreError> {
        if let Some(key) = self.get(key_hash) {
            return Ok(Some(key));
        }
        let asked = if self.database.is_up() {
            store.find_api_key_by_hash(key_hash).await
        } else {
            Err(StoreError::timed_out())
        };
        let found = match asked {
            Ok(found) => found,
            Err(error) => {
                return match self.seen_within(key_hash, STALE_IF_UNAVAILABLE) {
                    Some(key) => {
                        tracing::debug!(%error, "database unavailable; using the key as last seen");
                        Ok(Some(key))
                    }
                    None => Err(error),
                };
            }
        };
        if let Some(key) = &found {
            self.put(key_hash.to_string(), key.clone());
        }
        Ok(found)
    }

    /// Forgets every key; called whenever a key is revoked or rotated.
    pub fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{NewApiKey, Role, Tier};

    fn key() -> ApiKey {
        NewApiKey::generate("k", "t", Role::Reader, Tier::Free).key
    }

    #[test]
    fn entries_expire_and_clear() {
        let cache = KeyCache::new(Duration::from_millis(50), Default::default());
        cache.put("h".into(), key());
        assert!(cache.get("h").is_some());
        std::thread::sleep(Duration::from_millis(60));
        assert!(cache.get("h").is_none(), "expired");
        cache.put("h".into(), key());
        cache.clear();
        assert!(cache.get("h").is_none(), "cleared");
    }

    #[test]
    fn zero_ttl_disables_caching() {
        let cache = KeyCache::new(Duration::ZERO, Default::default());
        cache.put("h".into(), key());
        assert!(cache.get("h").is_none());
    }
}
