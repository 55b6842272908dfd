//! Dashboard sessions: one row per signed-in browser, found by its token's hash.

use super::database::SqlStore;
use super::StoreError;
use crate::auth::sessions::{Session, SessionStore};
use crate::timestamp::Timestamp;
use async_trait::async_trait;

#[async_trait]
impl SessionStore for SqlStore {
    async fn open_session(
        &self,
        token_hash: &str,
        session: &Session,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let expired = self
            .sql("DELETE FROM dashboard_sessions WHERE expires_at <= ?")
            .bind(now);
        self.execute(expired).await?;
        let insert = self
            .sql("INSERT INTO dashboard_sessions (token_hash, key_hash, csrf, expires_at) VALUES (?, ?, ?, ?)")
            .bind(token_hash)
            .bind(&session.key_hash)
            .bind(&session.csrf)
            .bind(session.expires_at);
        self.execute(insert).await?;
        Ok(())
    }

    async fn find_session(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Option<Session>, StoreError> {
        let statement = self
            .sql("SELECT key_hash, csrf, expires_at FROM dashboard_sessions WHERE token_hash = ? AND expires_at > ?")
            .bind(token_hash)
            .bind(now);
        self.optional_row(statement)
            .await?
            .map(|row| {
                Ok(Session {
                    key_hash: row.text("key_hash")?,
                    csrf: row.text("csrf")?,
                    expires_at: row.time("expires_at")?,
                })
            })
            .transpose()
    }

    async fn close_session(&self, token_hash: &str) -> Result<(), StoreError> {
        let statement = self
            .sql("DELETE FROM dashboard_sessions WHERE token_hash = ?")
            .bind(token_hash);
        self.execute(statement).await?;
        Ok(())
    }
}
