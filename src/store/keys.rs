//! API keys: stored by hash, revoked in place, rotated in one transaction.

use super::database::{SqlStore, Tx};
use super::row::Row;
use super::StoreError;
use super::{KeyChange, KeyStore};
use crate::auth::{ApiKey, NewApiKey, Role, Tier};
use crate::timestamp::Timestamp;
use async_trait::async_trait;
use uuid::Uuid;

#[async_trait]
impl KeyStore for SqlStore {
    async fn bootstrap_admin_key(&self, key: &NewApiKey) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        if self.mark_bootstrapped(&mut tx, key).await? == 0 {
            return Ok(false);
        }
        self.insert_key(&mut tx, key).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn seed_api_key(&self, key: &NewApiKey) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let inserted = self.insert_key(&mut tx, key).await? == 1;
        self.mark_bootstrapped(&mut tx, key).await?;
        tx.commit().await?;
        Ok(inserted)
    }

    async fn insert_api_key(&self, key: &NewApiKey) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        self.insert_key(&mut tx, key).await?;
        tx.commit().await
    }

    async fn find_api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKey>, StoreError> {
        let statement = self
            .sql("SELECT * FROM api_keys WHERE key_hash = ?")
            .bind(key_hash);
        self.optional_row(statement)
            .await?
            .as_ref()
            .map(key_from_row)
            .transpose()
    }

    async fn list_api_keys(&self, tenant: &str) -> Result<Vec<ApiKey>, StoreError> {
        let statement = self
            .sql("SELECT * FROM api_keys WHERE tenant_id = ? ORDER BY created_at DESC, id DESC")
            .bind(tenant);
        self.rows(statement)
            .await?
            .iter()
            .map(key_from_row)
            .collect()
    }

    async fn get_api_key(&self, tenant: &str, id: Uuid) -> Result<Option<ApiKey>, StoreError> {
        let statement = self
            .sql("SELECT * FROM api_keys WHERE tenant_id = ? AND id = ?")
            .bind(tenant)
            .bind(id);
        self.optional_row(statement)
            .await?
            .as_ref()
            .map(key_from_row)
            .transpose()
    }

    async fn revoke_api_key(&self, tenant: &str, id: Uuid) -> Result<KeyChange, StoreError> {
        let mut tx = self.begin().await?;
        let outcome = self.revoke_in(&mut tx, tenant, id).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    async fn rotate_api_key(
        &self,
        tenant: &str,
        id: Uuid,
        replacement: &NewApiKey,
    ) -> Result<KeyChange, StoreError> {
        let mut tx = self.begin().await?;
        let outcome = self.revoke_in(&mut tx, tenant, id).await?;
        if outcome == KeyChange::Done {
            self.insert_key(&mut tx, replacement).await?;
            tx.commit().await?;
        }
        Ok(outcome)
    }
}

impl SqlStore {
    async fn insert_key(&self, tx: &mut Tx, key: &NewApiKey) -> Result<u64, StoreError> {
        let statement = self
            .sql(
                "INSERT INTO api_keys (id, name, key_hash, key_prefix, tenant_id, role, tier, revoked, rotated_from,
                                       created_at, system)
                 VALUES (?, ?, ?, ?, ?, ?, ?, FALSE, ?, ?, ?) ON CONFLICT (key_hash) DO NOTHING",
            )
            .bind(key.key.id)
            .bind(&key.key.name)
            .bind(&key.key_hash)
            .bind(&key.key.key_prefix)
            .bind(&key.key.tenant_id)
            .bind(key.key.role.as_str())
            .bind(key.key.tier.as_str())
            .bind(key.rotated_from)
            .bind(key.key.created_at)
            .bind(key.key.system);
        tx.execute(statement).await
    }

    async fn mark_bootstrapped(&self, tx: &mut Tx, key: &NewApiKey) -> Result<u64, StoreError> {
        let statement = self
            .sql("INSERT INTO bootstrap (id, key_id, created_at) VALUES (1, ?, ?) ON CONFLICT (id) DO NOTHING")
            .bind(key.key.id)
            .bind(key.key.created_at);
        tx.execute(statement).await
    }

    /// Revokes a key if it is the tenant's and live; tells which of the three cases applied.
    async fn revoke_in(
        &self,
        tx: &mut Tx,
        tenant: &str,
        id: Uuid,
    ) -> Result<KeyChange, StoreError> {
        let revoke = self
            .sql("UPDATE api_keys SET revoked = TRUE, revoked_at = ? WHERE tenant_id = ? AND id = ? AND NOT revoked")
            .bind(Timestamp::now())
            .bind(tenant)
            .bind(id);
        if tx.execute(revoke).await? == 1 {
            return Ok(KeyChange::Done);
        }
        let exists = self
            .sql("SELECT 1 FROM api_keys WHERE tenant_id = ? AND id = ?")
            .bind(tenant)
            .bind(id);
        Ok(if tx.optional_row(exists).await?.is_some() {
            KeyChange::AlreadyRevoked
        } else {
            KeyChange::NotFound
        })
    }
}

fn key_from_row(row: &Row) -> Result<ApiKey, StoreError> {
    let role = row.text("role")?;
    let tier = row.text("tier")?;
    Ok(ApiKey {
        id: row.id("id")?,
        name: row.text("name")?,
        key_prefix: row.text("key_prefix")?,
        tenant_id: row.text("tenant_id")?,
        role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("role {role}")))?,
        tier: Tier::parse(&tier).ok_or_else(|| StoreError::Corrupt(format!("tier {tier}")))?,
        revoked: row.bool("revoked")?,
        created_at: row.time("created_at")?,
        system: row.bool("system")?,
    })
}
