-- Schema registry (spec §1.5): JSON Schemas a tenant registers to validate packet contexts. Rows are never
-- changed or deleted; a new version is a new row. The document is kept as sent. Times are Unix microseconds.
CREATE TABLE schemas (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    name        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    json_schema TEXT NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX schemas_tenant_created ON schemas (tenant_id, created_at DESC, id DESC);
