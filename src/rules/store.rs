//! What a tenant's trusted endpoints need stored. Implemented by `crate::store`.

use super::TrustedEndpoint;
use crate::persistence::StoreError;
use async_trait::async_trait;
use uuid::Uuid;

#[async_trait]
pub trait TrustStore: Send + Sync {
    async fn insert_trusted_endpoint(
        &self,
        tenant: &str,
        endpoint: &TrustedEndpoint,
    ) -> Result<(), StoreError>;
    /// The tenant's trusted endpoints, oldest first.
    async fn list_trusted_endpoints(
        &self,
        tenant: &str,
    ) -> Result<Vec<TrustedEndpoint>, StoreError>;
    /// True when the endpoint existed (in this tenant) and is now gone.
    async fn delete_trusted_endpoint(&self, tenant: &str, id: Uuid) -> Result<bool, StoreError>;
}
