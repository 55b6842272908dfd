-- Packet creates per tenant and UTC day (a batch is one), for tiers with a daily cap (spec §5.4). The
-- request windows of an embedded server live in its memory (one process owns this file).
CREATE TABLE daily_creates (
    tenant_id TEXT NOT NULL,
    day       INTEGER NOT NULL,     -- days since 1970-01-01 (UTC)
    used      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, day)
) STRICT;
