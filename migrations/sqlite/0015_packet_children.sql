-- A packet's children (the dashboard's chain navigation): packets chained from it, newest first.
CREATE INDEX packets_tenant_parent ON packets (tenant_id, parent_packet_id, created_at DESC) WHERE parent_packet_id IS NOT NULL;
