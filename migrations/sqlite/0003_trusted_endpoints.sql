-- Per-tenant trusted endpoints (evaluator.md "Gate before comparison"), managed through the API.
CREATE TABLE trusted_endpoints (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    url        TEXT NOT NULL,
    methods    TEXT NOT NULL,   -- JSON array of upper-case methods; empty means any
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX trusted_endpoints_tenant ON trusted_endpoints (tenant_id, created_at);
