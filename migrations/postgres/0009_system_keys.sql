-- System administrators (decision 14): the only keys that manage tenants and keys of other tenants.
-- Admin keys of the default tenant made before this migration were the bootstrap's scope: they keep it.
ALTER TABLE api_keys ADD COLUMN system BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE api_keys SET system = TRUE WHERE role = 'admin' AND tenant_id = 'default';
