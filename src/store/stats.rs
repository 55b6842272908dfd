//! Figures over packets for `GET /stats` and `GET /system/health` (docs/api.md §9.3–9.4): counts and means
//! computed by the database, written once over the few time expressions that differ between backends.

use super::database::{Pools, SqlStore};
use super::StatsStore;
use super::{postgres, Backend, StoreError};
use crate::auth::limits::TENANT_HOUR_SCOPE;
use crate::packets::stats::{AgentCount, PacketStats, SystemFigures};
use crate::timestamp::Timestamp;
use async_trait::async_trait;

/// The SQL of the figures that differs between backends: times as Unix seconds (floating point), and the
/// database's size.
struct Dialect {
    /// Whether the packet document has a `metadata.claimed_at`.
    claimed: &'static str,
    claimed_at: &'static str,
    created_at: &'static str,
    updated_at: &'static str,
    database_size: &'static str,
}

const SQLITE: Dialect = Dialect {
    claimed: "json_extract(doc, '$.metadata.claimed_at') IS NOT NULL",
    claimed_at: "(julianday(json_extract(doc, '$.metadata.claimed_at')) - 2440587.5) * 86400.0",
    created_at: "created_at / 1000000.0",
    updated_at: "updated_at / 1000000.0",
    database_size: "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
};

const POSTGRES: Dialect = Dialect {
    claimed: "doc #>> '{metadata,claimed_at}' IS NOT NULL",
    claimed_at: "extract(epoch FROM (doc #>> '{metadata,claimed_at}')::timestamptz)",
    created_at: "extract(epoch FROM created_at)",
    updated_at: "extract(epoch FROM updated_at)",
    database_size: "SELECT pg_database_size(current_database())",
};

impl SqlStore {
    fn dialect(&self) -> &'static Dialect {
        match self.backend() {
            Backend::Sqlite => &SQLITE,
            Backend::Postgres => &POSTGRES,
        }
    }

    /// The mean of `later − earlier` (both Unix-seconds expressions) over packets matching `filter`.
    async fn mean_seconds(
        &self,
        later: &str,
        earlier: &str,
        filter: &str,
        tenant: Option<&str>,
    ) -> Result<Option<f64>, StoreError> {
        let mut statement = self.sql(&format!(
            "SELECT CAST(avg({later} - {earlier}) AS DOUBLE PRECISION) AS mean FROM packets WHERE {filter} AND {}",
            self.dialect().claimed
        ));
        if let Some(tenant) = tenant {
            statement.push_bind(" AND tenant_id = ?", tenant);
        }
        self.row(statement).await?.optional_float("mean")
    }
}

#[async_trait]
impl StatsStore for SqlStore {
    async fn packet_stats(
        &self,
        tenant: Option<&str>,
        since: Timestamp,
    ) -> Result<PacketStats, StoreError> {
        let dialect = self.dialect();
        let mut by_status =
            self.sql("SELECT status, verification, count(*) AS n FROM packets WHERE TRUE");
        let mut recent = self
            .sql("SELECT count(*) FROM packets WHERE created_at >= ?")
            .bind(since);
        if let Some(tenant) = tenant {
            by_status.push_bind(" AND tenant_id = ?", tenant);
            recent.push_bind(" AND tenant_id = ?", tenant);
        }
        by_status.push(" GROUP BY status, verification");
        let claim_time = self.mean_seconds(
            dialect.claimed_at,
            dialect.created_at,
            "status IN ('claimed', 'in_progress', 'completed')",
            tenant,
        );
        let (rows, packets_since, avg_claim_time_seconds) =
            tokio::try_join!(self.rows(by_status), self.count(recent), claim_time)?;
        let counts = rows
            .iter()
            .map(|row| {
                Ok((
                    row.text("status")?,
                    row.optional_text("verification")?,
                    row.integer("n")?,
                ))
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(PacketStats::new(
            counts,
            packets_since,
            avg_claim_time_seconds,
        ))
    }

    async fn system_figures(&self, hour_start: i64) -> Result<SystemFigures, StoreError> {
        let dialect = self.dialect();
        let complete_time = self.mean_seconds(
            dialect.updated_at,
            dialect.claimed_at,
            "status = 'completed'",
            None,
        );
        let active_agents = self.sql(
            "SELECT count(DISTINCT target_agent_id) FROM packets
             WHERE status IN ('claimed', 'in_progress', 'awaiting_human')",
        );
        let agents_seen = self.sql(
            "SELECT count(*) FROM (SELECT source_agent_id FROM packets UNION SELECT target_agent_id FROM packets) AS seen",
        );
        let top_agents = self.sql(
            "SELECT agent_id, count(*) AS n FROM (SELECT source_agent_id AS agent_id FROM packets
                                                  UNION ALL SELECT target_agent_id FROM packets) AS named
             GROUP BY agent_id ORDER BY n DESC, agent_id LIMIT 5",
        );
        let oldest_waiting =
            self.sql("SELECT min(created_at) AS oldest FROM packets WHERE status = 'created'");
        let active_keys = self.sql("SELECT count(*) FROM api_keys WHERE NOT revoked");
        let (complete, active_agents, total_agents_seen, top, oldest, active_api_keys, size) = tokio::try_join!(
            complete_time,
            self.count(active_agents),
            self.count(agents_seen),
            self.rows(top_agents),
            self.row(oldest_waiting),
            self.count(active_keys),
            self.count(self.sql(dialect.database_size)),
        )?;
        let (connection_pool, requests_this_hour_by_tenant) = match &self.pools {
            Pools::Sqlite { rate_windows, .. } => (
                None,
                rate_windows.hour_counts(TENANT_HOUR_SCOPE, hour_start),
            ),
            Pools::Postgres(pool) => (
                Some(postgres::pool_figures(pool)),
                postgres::hour_counts(pool, TENANT_HOUR_SCOPE, hour_start).await?,
            ),
        };
        Ok(SystemFigures {
            avg_time_to_complete_seconds: complete,
            active_agents,
            total_agents_seen,
            top_agents: top
                .iter()
                .map(|row| {
                    Ok(AgentCount {
                        agent_id: row.text("agent_id")?,
                        packet_count: row.integer("n")?,
                    })
                })
                .collect::<Result<_, StoreError>>()?,
            oldest_waiting_created_at: oldest.optional_time("oldest")?,
            active_api_keys,
            db_size_bytes: Some(size),
            connection_pool,
            requests_this_hour_by_tenant,
        })
    }
}
