-- Tenants (spec §1.4). Deleting is soft; a name is unique among live tenants.
CREATE TABLE tenants (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    tier             TEXT NOT NULL,
    handoffs_per_day BIGINT NOT NULL,
    max_api_keys     BIGINT NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    deleted_at       TIMESTAMPTZ
);
CREATE UNIQUE INDEX tenants_live_name ON tenants (name) WHERE deleted_at IS NULL;
CREATE INDEX tenants_created ON tenants (created_at DESC, id DESC);

INSERT INTO tenants (id, name, tier, handoffs_per_day, max_api_keys, created_at, updated_at)
VALUES ('default', 'Default Tenant', 'free', 10000, 25, date_trunc('microseconds', now()), date_trunc('microseconds', now()));
