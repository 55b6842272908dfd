-- Evaluations (evaluator.md "Result"): every verdict is kept with its payload (secrets removed).
CREATE TABLE evaluations (
    id         TEXT PRIMARY KEY,   -- UUIDv7: ordering by id is ordering by time
    tenant_id  TEXT NOT NULL,
    run_id     TEXT,
    agent_id   TEXT,
    outcome    TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    payload    TEXT NOT NULL,
    result     TEXT NOT NULL
) STRICT;
CREATE INDEX evaluations_tenant ON evaluations (tenant_id, id DESC);
CREATE INDEX evaluations_tenant_run ON evaluations (tenant_id, run_id, id DESC);
