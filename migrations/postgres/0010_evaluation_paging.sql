-- Evaluations are listed newest first by creation time, then id, paged by a cursor like every listing.
CREATE INDEX evaluations_tenant_created ON evaluations (tenant_id, created_at DESC, id DESC);
