//! Records: sealed evidence, appended in batches and never changed. The document (without bodies) is kept
//! as TEXT on both backends so that it reads back byte for byte as it was sealed.

use super::database::{Pools, SqlStore};
use super::row::Row;
use super::RecordStore;
use super::{postgres, sqlite, StoreError};
use crate::records::{Record, RecordQuery, RecordSummary, Seal, SealedRecord};
use async_trait::async_trait;
use uuid::Uuid;

const SEALED_COLUMNS: &str =
    "SELECT sha256, key_id, signature, doc, request_body, response_body FROM records";
/// The sealed columns and those that order records, for a subquery ordered again outside.
const SEALED_COLUMNS_WITH_ORDER: &str =
    "SELECT sha256, key_id, signature, doc, request_body, response_body, started_at, id FROM records";

#[async_trait]
impl RecordStore for SqlStore {
    async fn insert_records(&self, records: &[SealedRecord]) -> Result<Vec<Uuid>, StoreError> {
        let mut inserted = Vec::with_capacity(records.len());
        match &self.pools {
            Pools::Sqlite { writer, .. } => {
                sqlite::insert_records(writer, records, &mut inserted).await?
            }
            Pools::Postgres(pool) => postgres::insert_records(pool, records, &mut inserted).await?,
        }
        Ok(not_inserted(records, inserted))
    }

    async fn get_record(&self, tenant: &str, id: Uuid) -> Result<Option<SealedRecord>, StoreError> {
        let mut statement = self.sql(SEALED_COLUMNS);
        statement
            .push_bind(" WHERE tenant_id = ?", tenant)
            .push_bind(" AND id = ?", id);
        self.optional_row(statement)
            .await?
            .as_ref()
            .map(sealed_from_row)
            .transpose()
    }

    async fn list_records(
        &self,
        tenant: &str,
        query: &RecordQuery,
    ) -> Result<(Vec<RecordSummary>, bool), StoreError> {
        let mut statement = self
            .sql("SELECT doc FROM records WHERE tenant_id = ?")
            .bind(tenant);
        for (column, value) in [
            ("run_id", &query.run_id),
            ("agent_id", &query.agent_id),
            ("action", &query.action),
            ("host", &query.host),
        ] {
            if let Some(value) = value {
                statement.push_bind(&format!(" AND {column} = ?"), value);
            }
        }
        if let Some(status) = query.status {
            statement.push_bind(" AND status = ?", i64::from(status));
        }
        statement
            .push_after_cursor("started_at", &query.page)
            .push_newest_first("started_at", &query.page);
        let rows = self.rows(statement).await?;
        let mut summaries = rows
            .iter()
            .map(|row| Ok(record_from_row(row, Vec::new(), Vec::new())?.summary()))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let has_more = query.page.cut(&mut summaries);
        Ok((summaries, has_more))
    }

    async fn export_records(
        &self,
        tenant: &str,
        run_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<SealedRecord>, StoreError> {
        let mut statement = self.sql("SELECT * FROM (");
        statement
            .push(SEALED_COLUMNS_WITH_ORDER)
            .push_bind(" WHERE tenant_id = ?", tenant);
        if let Some(run) = run_id {
            statement.push_bind(" AND run_id = ?", run);
        }
        statement.push_bind(
            " ORDER BY started_at DESC, id DESC LIMIT ?) AS newest ORDER BY started_at, id",
            limit,
        );
        self.rows(statement)
            .await?
            .iter()
            .map(sealed_from_row)
            .collect()
    }

    async fn latest_record_for_action(
        &self,
        tenant: &str,
        run_id: &str,
        action: &str,
        agent_id: Option<&str>,
    ) -> Result<Option<SealedRecord>, StoreError> {
        let mut statement = self.sql(SEALED_COLUMNS);
        statement
            .push_bind(" WHERE tenant_id = ?", tenant)
            .push_bind(" AND run_id = ?", run_id)
            .push_bind(" AND action = ?", action);
        if let Some(agent) = agent_id {
            statement.push_bind(" AND agent_id = ?", agent);
        }
        statement.push(" ORDER BY started_at DESC, id DESC LIMIT 1");
        self.optional_row(statement)
            .await?
            .as_ref()
            .map(sealed_from_row)
            .transpose()
    }
}

/// A sealed record from its stored parts: the document without bodies, the bodies, the seal.
fn sealed_from_row(row: &Row) -> Result<SealedRecord, StoreError> {
    let seal = Seal {
        sha256: row.text("sha256")?,
        key_id: row.text("key_id")?,
        signature: row.text("signature")?,
    };
    let record = record_from_row(row, row.bytes("request_body")?, row.bytes("response_body")?)?;
    Ok(SealedRecord { record, seal })
}

/// The record in the row's `doc` (stored without bodies), with these bodies.
fn record_from_row(
    row: &Row,
    request_body: Vec<u8>,
    response_body: Vec<u8>,
) -> Result<Record, StoreError> {
    Record::from_parts(row.json_text("doc")?, request_body, response_body)
        .map_err(|error| StoreError::corrupt("record document", error))
}

/// Records per INSERT statement: many rows per statement, bounded so that one statement stays a reasonable
/// message (SQLite allows 32,766 bound values; bodies of up to 10 MiB each are bound too).
const RECORDS_PER_STATEMENT: usize = 256;
const BODY_BYTES_PER_STATEMENT: usize = 16 << 20;

/// `records` cut into runs that each make one multi-row INSERT: at most `RECORDS_PER_STATEMENT` rows and, unless
/// a single record is larger, `BODY_BYTES_PER_STATEMENT` bytes of bodies.
pub(crate) fn insert_chunks(records: &[SealedRecord]) -> Vec<&[SealedRecord]> {
    let mut chunks = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (index, sealed) in records.iter().enumerate() {
        let size = sealed.record.request_body.len() + sealed.record.response_body.len();
        if index > start
            && (index - start == RECORDS_PER_STATEMENT || bytes + size > BODY_BYTES_PER_STATEMENT)
        {
            chunks.push(&records[start..index]);
            (start, bytes) = (index, 0);
        }
        bytes += size;
    }
    if start < records.len() {
        chunks.push(&records[start..]);
    }
    chunks
}

/// The ids of `records` that an `INSERT … ON CONFLICT (id) DO NOTHING RETURNING id` did not insert: stored
/// before, or repeated within the same batch (the first copy wins).
fn not_inserted(records: &[SealedRecord], inserted: Vec<Uuid>) -> Vec<Uuid> {
    let mut inserted: std::collections::HashSet<Uuid> = inserted.into_iter().collect();
    records
        .iter()
        .map(|sealed| sealed.record.id)
        .filter(|id| !inserted.remove(id))
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::records::{Record, RecordKey, SealedRecord};

    fn records(count: usize, body_bytes: usize) -> Vec<SealedRecord> {
        let key = RecordKey::generate();
        let template: Record =
            serde_json::from_str(include_str!("../../fixtures/records/get-order.json"))
                .expect("fixture record");
        (0..count)
            .map(|_| {
                let mut record = template.clone();
                record.id = uuid::Uuid::now_v7();
                record.response_body = vec![b'x'; body_bytes];
                key.seal(record)
            })
            .collect()
    }

    #[test]
    fn inserts_are_cut_by_rows_and_by_body_bytes() {
        let many = records(600, 10);
        let sizes: Vec<usize> = super::insert_chunks(&many)
            .iter()
            .map(|c| c.len())
            .collect();
        assert_eq!(sizes, [256, 256, 88]);

        // 6 MiB bodies: two fit under 16 MiB, the third starts a new statement; one alone may exceed it.
        let large = records(5, 6 << 20);
        let sizes: Vec<usize> = super::insert_chunks(&large)
            .iter()
            .map(|c| c.len())
            .collect();
        assert_eq!(sizes, [2, 2, 1]);
        let huge = records(2, 20 << 20);
        let sizes: Vec<usize> = super::insert_chunks(&huge)
            .iter()
            .map(|c| c.len())
            .collect();
        assert_eq!(sizes, [1, 1]);
        assert!(super::insert_chunks(&[]).is_empty());
    }

    #[test]
    fn ids_not_returned_by_the_insert_were_already_stored() {
        let mut batch = records(3, 0);
        batch.push(batch[0].clone());
        let ids: Vec<_> = batch.iter().map(|sealed| sealed.record.id).collect();
        // The first and the third were inserted; the second existed; the repeat of the first lost.
        let already = super::not_inserted(&batch, vec![ids[2], ids[0]]);
        assert_eq!(already, [ids[1], ids[0]]);
    }
}
