-- Dashboard sessions (docs/dashboard.md): the SHA-256 of each session's cookie token, the hash of the API key it
-- was opened with, its CSRF token and when it ends. Sign-out deletes the row.
CREATE TABLE dashboard_sessions (
    token_hash TEXT PRIMARY KEY,
    key_hash   TEXT NOT NULL,
    csrf       TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX dashboard_sessions_expires ON dashboard_sessions (expires_at);
