//! What the proxy trusts, per tenant, without a database read per request: the tenant's trusted endpoints are
//! remembered for a few seconds (the key cache's lifetime) together with the rules they were combined with.

use crate::rules::{Rules, TrustList};
use crate::store::{DatabaseHealth, Store, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const MAX_TENANTS: usize = 10_000;
/// While the database cannot be asked, a list built this recently (with the rules in force) still serves.
const STALE_IF_UNAVAILABLE: Duration = Duration::from_secs(3600);

struct Entry {
    at: Instant,
    rules: Arc<Rules>,
    list: Arc<TrustList>,
}

pub struct TrustCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, Entry>>,
    /// While the database is known to be down, lists come from stale entries without asking it.
    database: Arc<DatabaseHealth>,
}

impl TrustCache {
    pub fn new(ttl: Duration, database: Arc<DatabaseHealth>) -> TrustCache {
        TrustCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
            database,
        }
    }

    pub async fn trust_list(
        &self,
        store: &dyn Store,
        tenant: &str,
        rules: &Arc<Rules>,
    ) -> Result<Arc<TrustList>, StoreError> {
        if let Some(list) = self.cached(tenant, rules, self.ttl) {
            return Ok(list);
        }
        let asked = if self.database.is_up() {
            store.list_trusted_endpoints(tenant).await
        } else {
            Err(StoreError::timed_out())
        };
        let endpoints = match asked {
            Ok(endpoints) => endpoints,
            Err(error) => {
                return self
                    .cached(tenant, rules, STALE_IF_UNAVAILABLE)
                    .ok_or(error)
            }
        };
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

    fn cached(
        &self,
        tenant: &str,
        rules: &Arc<Rules>,
        max_age: Duration,
    ) -> Option<Arc<TrustList>> {
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        entries
            .get(tenant)
            // A SIGHUP reload replaces the rules: an entry made with the old ones is stale.
            .filter(|entry| entry.at.elapsed() < max_age && Arc::ptr_eq(&entry.rules, rules))
            .map(|entry| entry.list.clone())
    }
}
