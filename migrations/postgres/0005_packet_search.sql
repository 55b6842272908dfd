-- Full-text search over each packet's summary (weight A) and every string in its context (weight B).
-- A trigger keeps the vector current only when the context changes, so status updates pay nothing for it.

ALTER TABLE packets ADD COLUMN search tsvector;

CREATE FUNCTION packets_search_vector(doc jsonb) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT setweight(to_tsvector('english'::regconfig, coalesce(doc #>> '{context,summary}', '')), 'A')
        || setweight(jsonb_to_tsvector('english'::regconfig, coalesce(doc -> 'context', '{}'::jsonb), '["string"]'), 'B')
$$;

CREATE FUNCTION packets_search_refresh() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.search := packets_search_vector(NEW.doc);
    RETURN NEW;
END
$$;

CREATE TRIGGER packets_search_insert BEFORE INSERT ON packets
    FOR EACH ROW EXECUTE FUNCTION packets_search_refresh();
CREATE TRIGGER packets_search_update BEFORE UPDATE OF doc ON packets
    FOR EACH ROW WHEN (OLD.doc -> 'context' IS DISTINCT FROM NEW.doc -> 'context')
    EXECUTE FUNCTION packets_search_refresh();

UPDATE packets SET search = packets_search_vector(doc);
CREATE INDEX packets_search ON packets USING GIN (search);
