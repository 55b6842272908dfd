//! The schema registry: JSON Schemas a tenant registers for packet context.

use super::database::SqlStore;
use super::row::Row;
use super::statement::Param;
use super::SchemaStore;
use super::StoreError;
use crate::packets::schemas::Schema;
use crate::paging::Page;
use async_trait::async_trait;
use uuid::Uuid;

#[async_trait]
impl SchemaStore for SqlStore {
    async fn insert_schema(&self, schema: &Schema) -> Result<(), StoreError> {
        let statement = self
            .sql(
                "INSERT INTO schemas (id, tenant_id, name, version, json_schema, created_at)
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(schema.id)
            .bind(&schema.tenant_id)
            .bind(&schema.name)
            .bind(schema.version)
            .bind(Param::json_text(&schema.json_schema)?)
            .bind(schema.created_at);
        self.execute(statement).await?;
        Ok(())
    }

    async fn get_schema(&self, tenant: &str, id: Uuid) -> Result<Option<Schema>, StoreError> {
        let statement = self
            .sql("SELECT * FROM schemas WHERE tenant_id = ? AND id = ?")
            .bind(tenant)
            .bind(id);
        self.optional_row(statement)
            .await?
            .as_ref()
            .map(schema_from_row)
            .transpose()
    }

    async fn list_schemas(
        &self,
        tenant: &str,
        page: Page,
    ) -> Result<(Vec<Schema>, i64), StoreError> {
        let mut newest = self
            .sql("SELECT * FROM schemas WHERE tenant_id = ?")
            .bind(tenant);
        newest
            .push(" ORDER BY created_at DESC, id DESC")
            .push_limit_offset(&page);
        let count = self
            .sql("SELECT count(*) FROM schemas WHERE tenant_id = ?")
            .bind(tenant);
        let (rows, total) = tokio::try_join!(self.rows(newest), self.count(count))?;
        let schemas = rows.iter().map(schema_from_row).collect::<Result<_, _>>()?;
        Ok((schemas, total))
    }
}

fn schema_from_row(row: &Row) -> Result<Schema, StoreError> {
    Ok(Schema {
        id: row.id("id")?,
        name: row.text("name")?,
        version: row.integer("version")?,
        json_schema: row.json_text("json_schema")?,
        tenant_id: row.text("tenant_id")?,
        created_at: row.time("created_at")?,
    })
}
