//! Rate windows and the daily create cap (docs/api.md §5.4). The daily cap is one conditional upsert on both
//! backends; the request windows live in this process's memory on SQLite (one process owns the file) and in
//! an unlogged table on PostgreSQL, so that every instance counts together.

use super::database::{Pools, SqlStore};
use super::LimitStore;
use super::{postgres, StoreError};
use crate::auth::limits::{RateCounts, RateHit};
use async_trait::async_trait;

#[async_trait]
impl LimitStore for SqlStore {
    async fn count_request(&self, hit: &RateHit) -> Result<RateCounts, StoreError> {
        match &self.pools {
            Pools::Sqlite { rate_windows, .. } => Ok(rate_windows.count(hit)),
            Pools::Postgres(pool) => postgres::count_request(pool, hit).await,
        }
    }

    async fn refund_request(&self, minute_scope: &str, second: i64) -> Result<(), StoreError> {
        match &self.pools {
            Pools::Sqlite { rate_windows, .. } => {
                rate_windows.refund(minute_scope, second);
                Ok(())
            }
            Pools::Postgres(pool) => postgres::refund_request(pool, minute_scope, second).await,
        }
    }

    async fn take_daily_slot(&self, tenant: &str, day: i64, cap: u64) -> Result<bool, StoreError> {
        let statement = self
            .sql(
                "INSERT INTO daily_creates AS d (tenant_id, day, used) VALUES (?, ?, 1)
                 ON CONFLICT (tenant_id, day) DO UPDATE SET used = d.used + 1 WHERE d.used < ?
                 RETURNING used",
            )
            .bind(tenant)
            .bind(day)
            .bind(i64::try_from(cap).unwrap_or(i64::MAX));
        Ok(self.write_returning(statement).await?.is_some())
    }

    async fn prune_limits(&self, second: i64) -> Result<(), StoreError> {
        if let Pools::Postgres(pool) = &self.pools {
            postgres::prune_rate_windows(pool, second).await?;
        }
        let statement = self
            .sql("DELETE FROM daily_creates WHERE day < ?")
            .bind(second.div_euclid(86_400) - 1);
        self.execute(statement).await?;
        Ok(())
    }
}
