-- Per-tenant trusted endpoints (evaluator.md "Gate before comparison"), managed through the API.
CREATE TABLE trusted_endpoints (
    id         UUID PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    url        TEXT NOT NULL,
    methods    TEXT[] NOT NULL,  -- upper-case methods; empty means any
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX trusted_endpoints_tenant ON trusted_endpoints (tenant_id, created_at);
