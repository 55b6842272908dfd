//! Dashboard sessions (docs/dashboard.md): a browser signs in once with an API key and then carries a random
//! session token in a cookie. Only the token's SHA-256 is stored, with the hash of the key it stands for (so a
//! revoked key ends its sessions at once) and the session's CSRF token; sign-out deletes the row.

use crate::persistence::StoreError;
use crate::timestamp::Timestamp;
use async_trait::async_trait;

/// How long a session lasts after sign-in.
pub const SESSION_SECONDS: i64 = 12 * 3600;

/// A signed-in browser's session, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// SHA-256 (hex) of the API key it was opened with.
    pub key_hash: String,
    /// The token every form of the session carries.
    pub csrf: String,
    pub expires_at: Timestamp,
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores a session under its token's hash, removing sessions that expired before `now`.
    async fn open_session(
        &self,
        token_hash: &str,
        session: &Session,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// The session whose token hashes to `token_hash`, unless it expired before `now`.
    async fn find_session(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Option<Session>, StoreError>;
    async fn close_session(&self, token_hash: &str) -> Result<(), StoreError>;
}

/// Whether two tokens are equal, in time that does not depend on where they differ.
pub fn tokens_match(presented: &str, expected: &str) -> bool {
    presented.len() == expected.len()
        && presented
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |difference, (a, b)| difference | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::random_token;

    #[test]
    fn tokens_are_random_and_compared_whole() {
        let (one, two) = (random_token(), random_token());
        assert_ne!(one, two);
        assert_eq!(one.len(), 43);
        assert!(tokens_match(&one, &one.clone()));
        assert!(!tokens_match(&one, &two));
        assert!(!tokens_match(&one, &one[..42]));
        assert!(!tokens_match("", &one));
    }
}
