-- API keys, packets and their history. Times are microseconds since the Unix epoch (UTC).

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    key_hash     TEXT NOT NULL UNIQUE,
    key_prefix   TEXT NOT NULL,
    tenant_id    TEXT NOT NULL,
    role         TEXT NOT NULL,
    tier         TEXT NOT NULL,
    revoked      INTEGER NOT NULL DEFAULT 0,
    rotated_from TEXT,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER
) STRICT;
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, created_at DESC);

-- One row, written by whichever instance bootstraps the first admin key.
CREATE TABLE bootstrap (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    key_id     TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE packets (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL,
    status           TEXT NOT NULL,
    revision         INTEGER NOT NULL,
    source_agent_id  TEXT NOT NULL,
    target_agent_id  TEXT NOT NULL,
    priority         TEXT NOT NULL,
    tags             TEXT NOT NULL,   -- JSON array of strings
    parent_packet_id TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    hitl_deadline    INTEGER,          -- when an unanswered checkpoint expires the packet
    doc              TEXT NOT NULL    -- the packet as the API returns it
) STRICT;
CREATE INDEX packets_tenant_created ON packets (tenant_id, created_at DESC, id DESC);
CREATE INDEX packets_tenant_status ON packets (tenant_id, status, created_at);
CREATE INDEX packets_hitl_deadline ON packets (hitl_deadline) WHERE hitl_deadline IS NOT NULL;
CREATE INDEX packets_live_created ON packets (created_at) WHERE status NOT IN ('completed', 'expired');

CREATE TABLE packet_events (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    packet_id  TEXT NOT NULL,
    tenant_id  TEXT NOT NULL,
    event_type TEXT NOT NULL,
    actor      TEXT NOT NULL,
    details    TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX packet_events_packet ON packet_events (packet_id, seq);
CREATE INDEX packet_events_tenant ON packet_events (tenant_id, created_at);
