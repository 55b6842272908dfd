//! What the proxy trusts, per tenant, without a database read per request: the tenant's trusted endpoints are
//! remembered for a few seconds (the key cache's lifetime) together with the rules they were combined with.

use crate::rules::{Rules, TrustList};
use crate::store::{Store, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const MAX_TENANTS: usize = 10_000;

struct Entry {
    at: Instant,
    rules: Arc<Rules>,
    list: Arc<TrustList>,
}

pub struct TrustCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

impl TrustCache {
    pub fn new(ttl: Duration) -> TrustCache {
        TrustCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub async fn trust_list(
        &self,
        store: &dyn Store,
        tenant: &str,
        rules: &Arc<Rules>,
    ) -> Result<Arc<TrustList>, StoreError> {
        if let Some(list) = self.cached(tenant, rules) {
            return Ok(list);
        }
        let endpoints = store.list_trusted_endpoints(tenant).await?;
        let list = Arc::new(TrustList::new(rules, &endpoints));
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if entries.len() >= MAX_TENANTS {
            entries.clear();
        }
        entries.insert(
            tenant.to_string(),
            Entry {
                at: Instant::now(),
                rules: rules.clone(),
                list: list.clone(),
            },
        );
        Ok(list)
    }

    fn cached(&self, tenant: &str, rules: &Arc<Rules>) -> Option<Arc<TrustList>> {
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        entries
            .get(tenant)
            // A SIGHUP reload replaces the rules: an entry made with the old ones is stale.
            .filter(|entry| entry.at.elapsed() < self.ttl && Arc::ptr_eq(&entry.rules, rules))
            .map(|entry| entry.list.clone())
    }
}
