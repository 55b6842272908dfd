//! A tenant's trusted endpoints, managed through the API beside the rules file's.

use super::database::SqlStore;
use super::StoreError;
use super::TrustStore;
use crate::rules::TrustedEndpoint;
use async_trait::async_trait;
use uuid::Uuid;

#[async_trait]
impl TrustStore for SqlStore {
    async fn insert_trusted_endpoint(
        &self,
        tenant: &str,
        endpoint: &TrustedEndpoint,
    ) -> Result<(), StoreError> {
        let statement = self
            .sql("INSERT INTO trusted_endpoints (id, tenant_id, url, methods, created_at) VALUES (?, ?, ?, ?, ?)")
            .bind(endpoint.id)
            .bind(tenant)
            .bind(&endpoint.url)
            .bind(endpoint.methods.as_slice())
            .bind(endpoint.created_at);
        self.execute(statement).await?;
        Ok(())
    }

    async fn list_trusted_endpoints(
        &self,
        tenant: &str,
    ) -> Result<Vec<TrustedEndpoint>, StoreError> {
        let statement = self
            .sql("SELECT id, url, methods, created_at FROM trusted_endpoints WHERE tenant_id = ? ORDER BY created_at, id")
            .bind(tenant);
        self.rows(statement)
            .await?
            .iter()
            .map(|row| {
                Ok(TrustedEndpoint {
                    id: row.id("id")?,
                    url: row.text("url")?,
                    methods: row.texts("methods")?,
                    created_at: row.time("created_at")?,
                })
            })
            .collect()
    }

    async fn delete_trusted_endpoint(&self, tenant: &str, id: Uuid) -> Result<bool, StoreError> {
        let statement = self
            .sql("DELETE FROM trusted_endpoints WHERE tenant_id = ? AND id = ?")
            .bind(tenant)
            .bind(id);
        Ok(self.execute(statement).await? == 1)
    }
}
