-- API keys, packets and their history.

CREATE TABLE api_keys (
    id           UUID PRIMARY KEY,
    name         TEXT NOT NULL,
    key_hash     TEXT NOT NULL UNIQUE,
    key_prefix   TEXT NOT NULL,
    tenant_id    TEXT NOT NULL,
    role         TEXT NOT NULL,
    tier         TEXT NOT NULL,
    revoked      BOOLEAN NOT NULL DEFAULT FALSE,
    rotated_from UUID,
    created_at   TIMESTAMPTZ NOT NULL,
    revoked_at   TIMESTAMPTZ
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, created_at DESC);

-- One row, written by whichever instance bootstraps the first admin key.
CREATE TABLE bootstrap (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    key_id     UUID NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE packets (
    id               UUID PRIMARY KEY,
    tenant_id        TEXT NOT NULL,
    status           TEXT NOT NULL,
    revision         BIGINT NOT NULL,
    source_agent_id  TEXT NOT NULL,
    target_agent_id  TEXT NOT NULL,
    priority         TEXT NOT NULL,
    tags             TEXT[] NOT NULL,
    parent_packet_id UUID,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    hitl_deadline    TIMESTAMPTZ,          -- when an unanswered checkpoint expires the packet
    doc              JSONB NOT NULL   -- the packet as the API returns it
);
CREATE INDEX packets_tenant_created ON packets (tenant_id, created_at DESC, id DESC);
CREATE INDEX packets_tenant_status ON packets (tenant_id, status, created_at);
CREATE INDEX packets_tags ON packets USING GIN (tags);
CREATE INDEX packets_hitl_deadline ON packets (hitl_deadline) WHERE hitl_deadline IS NOT NULL;
CREATE INDEX packets_live_created ON packets (created_at) WHERE status NOT IN ('completed', 'expired');

CREATE TABLE packet_events (
    seq        BIGSERIAL PRIMARY KEY,
    id         UUID NOT NULL UNIQUE,
    packet_id  UUID NOT NULL,
    tenant_id  TEXT NOT NULL,
    event_type TEXT NOT NULL,
    actor      TEXT NOT NULL,
    details    JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX packet_events_packet ON packet_events (packet_id, seq);
CREATE INDEX packet_events_tenant ON packet_events (tenant_id, created_at);
