-- Evaluations are read by id (the primary key) and listed by tenant, newest first by creation time then id,
-- optionally for one run (0010). The id-ordered indexes of 0004 served neither listing's order: two indexes
-- fewer to write per evaluation, and a run's listing read in its order.
DROP INDEX evaluations_tenant;
DROP INDEX evaluations_tenant_run;
CREATE INDEX evaluations_tenant_run_created ON evaluations (tenant_id, run_id, created_at DESC, id DESC);
