-- Rate limits (spec §5.4, decision 5). Request windows are shared by every instance on this database:
-- per-second rows for the sliding minute of a key, one row per clock hour of a tenant. UNLOGGED: counters
-- are not worth a WAL write per request, and after a crash they start again from zero.
CREATE UNLOGGED TABLE rate_windows (
    scope        TEXT NOT NULL,
    window_start BIGINT NOT NULL,   -- Unix seconds: the second (minute scopes) or the hour start
    hits         BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,   -- Unix seconds after which the row no longer counts
    PRIMARY KEY (scope, window_start)
);

-- Packet creates per tenant and UTC day (a batch is one), for tiers with a daily cap. Logged: a restart
-- must not hand out a fresh day.
CREATE TABLE daily_creates (
    tenant_id TEXT NOT NULL,
    day       BIGINT NOT NULL,      -- days since 1970-01-01 (UTC)
    used      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, day)
);
