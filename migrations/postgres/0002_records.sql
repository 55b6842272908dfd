-- Evidence records (interceptor.md "What a record holds"). Bodies are kept as bytes beside the rest of the
-- record (JSON without bodies); the seal covers both.

CREATE TABLE records (
    id            UUID PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    run_id        TEXT,
    agent_id      TEXT,
    action        TEXT,
    method        TEXT NOT NULL,
    host          TEXT NOT NULL,
    status        INTEGER,
    provenance    TEXT NOT NULL,
    started_at    TIMESTAMPTZ NOT NULL,
    sha256        TEXT NOT NULL,
    key_id        TEXT NOT NULL,
    signature     TEXT NOT NULL,
    doc           TEXT NOT NULL,     -- never queried inside; TEXT keeps any string JSON allows
    request_body  BYTEA NOT NULL,
    response_body BYTEA NOT NULL
);
CREATE INDEX records_tenant_run_action ON records (tenant_id, run_id, action, started_at DESC);
CREATE INDEX records_tenant_run_started ON records (tenant_id, run_id, started_at DESC);
CREATE INDEX records_tenant_started ON records (tenant_id, started_at DESC, id DESC);
