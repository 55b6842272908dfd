-- Webhooks (docs/api.md §1.2, §6, decision 1). A packet change writes one delivery per matching active hook in
-- the same statement as the change (the outbox); delivery workers take due rows with FOR UPDATE SKIP LOCKED.
CREATE TABLE webhooks (
    id         UUID PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    url        TEXT NOT NULL,
    events     TEXT[] NOT NULL,
    secret     TEXT NOT NULL,           -- signs deliveries; never returned or logged
    active     BOOLEAN NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX webhooks_tenant ON webhooks (tenant_id, created_at, id);

-- status: pending (not tried yet) → delivered | failed (retried at next_retry_at) → … → dead_letter.
-- A worker that takes a row moves next_retry_at past its attempt's timeout (a lease) and counts the attempt, so
-- a worker that dies mid-attempt leaves the row due again.
CREATE TABLE webhook_deliveries (
    id               UUID PRIMARY KEY,
    webhook_id       UUID NOT NULL REFERENCES webhooks (id),
    tenant_id        TEXT NOT NULL,
    event_id         UUID NOT NULL,    -- `webhook-id`: the same for every attempt
    event_type       TEXT NOT NULL,
    packet_id        UUID,
    body             TEXT NOT NULL,    -- the exact bytes signed and sent
    event_time       TIMESTAMPTZ NOT NULL,
    status           TEXT NOT NULL,
    attempts         BIGINT NOT NULL,
    last_error       TEXT,
    last_status_code BIGINT,
    next_retry_at    TIMESTAMPTZ,
    delivered_at     TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_retry_at) WHERE status IN ('pending', 'failed');
CREATE INDEX webhook_deliveries_hook ON webhook_deliveries (webhook_id, created_at DESC, id DESC);
CREATE INDEX webhook_deliveries_dead ON webhook_deliveries (tenant_id, updated_at DESC, id DESC)
    WHERE status = 'dead_letter';
