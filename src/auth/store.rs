//! What authentication needs stored: keys (by hash, revoked in place, rotated in one transaction), tenants,
//! and the rate windows and daily caps of docs/api.md §5.4. Implemented by `crate::store`.

use super::limits::{RateCounts, RateHit};
use super::tenants::{Tenant, TenantChanges, TenantWrite};
use super::{ApiKey, NewApiKey};
use crate::persistence::StoreError;
use crate::timestamp::Timestamp;
use async_trait::async_trait;
use uuid::Uuid;

/// Outcome of revoking or rotating a key, decided by one conditional statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyChange {
    Done,
    AlreadyRevoked,
    NotFound,
}

#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Stores `key` only if no key was ever bootstrapped; true when this call did it.
    async fn bootstrap_admin_key(&self, key: &NewApiKey) -> Result<bool, StoreError>;
    /// Stores an operator-chosen key unless its hash is already present (revoked keys stay revoked), and
    /// marks bootstrap as done; true when the key was inserted.
    async fn seed_api_key(&self, key: &NewApiKey) -> Result<bool, StoreError>;
    async fn insert_api_key(&self, key: &NewApiKey) -> Result<(), StoreError>;
    async fn find_api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKey>, StoreError>;
    /// The tenant's keys, revoked ones included, newest first.
    async fn list_api_keys(&self, tenant: &str) -> Result<Vec<ApiKey>, StoreError>;
    /// The key `id` of `tenant`, to copy its attributes on rotation.
    async fn get_api_key(&self, tenant: &str, id: Uuid) -> Result<Option<ApiKey>, StoreError>;
    async fn revoke_api_key(&self, tenant: &str, id: Uuid) -> Result<KeyChange, StoreError>;
    /// Revokes `id` and stores `replacement` in one transaction.
    async fn rotate_api_key(
        &self,
        tenant: &str,
        id: Uuid,
        replacement: &NewApiKey,
    ) -> Result<KeyChange, StoreError>;
}

#[async_trait]
pub trait TenantStore: Send + Sync {
    /// Stores a new tenant unless a live tenant already has its name.
    async fn insert_tenant(&self, tenant: &Tenant) -> Result<TenantWrite, StoreError>;
    /// Live tenants, newest first.
    async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError>;
    /// A live tenant.
    async fn get_tenant(&self, id: &str) -> Result<Option<Tenant>, StoreError>;
    /// Applies `changes` to a live tenant in one conditional write (fields left out keep their stored
    /// value, even when another writer changed them meanwhile); the tenant as written.
    async fn update_tenant(
        &self,
        id: &str,
        changes: &TenantChanges,
        at: Timestamp,
    ) -> Result<Result<Tenant, TenantWrite>, StoreError>;
    /// Marks a live tenant deleted; NotFound when there is none.
    async fn delete_tenant(&self, id: &str, at: Timestamp) -> Result<TenantWrite, StoreError>;
}

#[async_trait]
pub trait LimitStore: Send + Sync {
    /// Counts one request in its rate windows and returns the counts including it.
    async fn count_request(&self, hit: &RateHit) -> Result<RateCounts, StoreError>;
    /// Takes back a counted request from a minute window (it was refused).
    async fn refund_request(&self, minute_scope: &str, second: i64) -> Result<(), StoreError>;
    /// Uses one of `cap` daily creates of `tenant` on `day`; false when they are all used.
    async fn take_daily_slot(&self, tenant: &str, day: i64, cap: u64) -> Result<bool, StoreError>;
    /// Forgets rate windows that ended before `second` and daily counts older than yesterday.
    async fn prune_limits(&self, second: i64) -> Result<(), StoreError>;
}
