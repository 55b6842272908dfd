-- System administrators (decision 14): the only keys that manage tenants and keys of other tenants.
-- Admin keys of the default tenant made before this migration were the bootstrap's scope: they keep it.
ALTER TABLE api_keys ADD COLUMN system INTEGER NOT NULL DEFAULT 0;
UPDATE api_keys SET system = 1 WHERE role = 'admin' AND tenant_id = 'default';
