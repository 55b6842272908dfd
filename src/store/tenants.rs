//! Tenants: live rows with a unique name; deleting is soft (docs/api.md §1.4).

use super::database::SqlStore;
use super::row::Row;
use super::StoreError;
use super::TenantStore;
use crate::auth::tenants::{Tenant, TenantChanges, TenantWrite};
use crate::timestamp::Timestamp;
use async_trait::async_trait;

#[async_trait]
impl TenantStore for SqlStore {
    async fn insert_tenant(&self, tenant: &Tenant) -> Result<TenantWrite, StoreError> {
        let statement = self
            .sql(
                "INSERT INTO tenants (id, name, tier, handoffs_per_day, max_api_keys, created_at, updated_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&tenant.id)
            .bind(&tenant.name)
            .bind(&tenant.tier)
            .bind(tenant.handoffs_per_day)
            .bind(tenant.max_api_keys)
            .bind(tenant.created_at)
            .bind(tenant.updated_at);
        Ok(match self.execute_unique(statement).await? {
            Ok(_) => TenantWrite::Done,
            Err(_duplicate) => TenantWrite::NameTaken,
        })
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let statement = self.sql(
            "SELECT * FROM tenants WHERE deleted_at IS NULL ORDER BY created_at DESC, id DESC",
        );
        self.rows(statement)
            .await?
            .iter()
            .map(tenant_from_row)
            .collect()
    }

    async fn get_tenant(&self, id: &str) -> Result<Option<Tenant>, StoreError> {
        let statement = self
            .sql("SELECT * FROM tenants WHERE id = ? AND deleted_at IS NULL")
            .bind(id);
        self.optional_row(statement)
            .await?
            .as_ref()
            .map(tenant_from_row)
            .transpose()
    }

    async fn update_tenant(
        &self,
        id: &str,
        changes: &TenantChanges,
        at: Timestamp,
    ) -> Result<Result<Tenant, TenantWrite>, StoreError> {
        let statement = self
            .sql(
                "UPDATE tenants SET name = COALESCE(?, name), tier = COALESCE(?, tier),
                                    handoffs_per_day = COALESCE(?, handoffs_per_day),
                                    max_api_keys = COALESCE(?, max_api_keys), updated_at = ?
                 WHERE id = ? AND deleted_at IS NULL
                 RETURNING *",
            )
            .bind(&changes.name)
            .bind(&changes.tier)
            .bind(changes.handoffs_per_day)
            .bind(changes.max_api_keys)
            .bind(at)
            .bind(id);
        match self.write_returning_unique(statement).await? {
            Ok(Some(row)) => Ok(Ok(tenant_from_row(&row)?)),
            Ok(None) => Ok(Err(TenantWrite::NotFound)),
            Err(_duplicate) => Ok(Err(TenantWrite::NameTaken)),
        }
    }

    async fn delete_tenant(&self, id: &str, at: Timestamp) -> Result<TenantWrite, StoreError> {
        let statement = self
            .sql("UPDATE tenants SET deleted_at = ?, updated_at = ? WHERE id = ? AND deleted_at IS NULL")
            .bind(at)
            .bind(at)
            .bind(id);
        Ok(if self.execute(statement).await? == 0 {
            TenantWrite::NotFound
        } else {
            TenantWrite::Done
        })
    }
}

fn tenant_from_row(row: &Row) -> Result<Tenant, StoreError> {
    Ok(Tenant {
        id: row.text("id")?,
        name: row.text("name")?,
        tier: row.text("tier")?,
        handoffs_per_day: row.integer("handoffs_per_day")?,
        max_api_keys: row.integer("max_api_keys")?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
        deleted_at: row.optional_time("deleted_at")?,
    })
}
