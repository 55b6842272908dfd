-- Full-text search over each packet's summary and every string in its context (FTS5, Porter stemming),
-- kept current by triggers; a row is rewritten only when the context changes.

CREATE VIRTUAL TABLE packets_fts USING fts5(summary, context, tokenize = 'porter unicode61');

CREATE TRIGGER packets_fts_insert AFTER INSERT ON packets BEGIN
    INSERT INTO packets_fts (rowid, summary, context) VALUES (
        new.rowid,
        coalesce(json_extract(new.doc, '$.context.summary'), ''),
        coalesce((SELECT group_concat(value, ' ') FROM json_tree(new.doc, '$.context') WHERE type = 'text'), '')
    );
END;

CREATE TRIGGER packets_fts_update AFTER UPDATE OF doc ON packets
WHEN json_extract(old.doc, '$.context') IS NOT json_extract(new.doc, '$.context') BEGIN
    DELETE FROM packets_fts WHERE rowid = old.rowid;
    INSERT INTO packets_fts (rowid, summary, context) VALUES (
        new.rowid,
        coalesce(json_extract(new.doc, '$.context.summary'), ''),
        coalesce((SELECT group_concat(value, ' ') FROM json_tree(new.doc, '$.context') WHERE type = 'text'), '')
    );
END;

CREATE TRIGGER packets_fts_delete AFTER DELETE ON packets BEGIN
    DELETE FROM packets_fts WHERE rowid = old.rowid;
END;

INSERT INTO packets_fts (rowid, summary, context)
SELECT rowid,
       coalesce(json_extract(doc, '$.context.summary'), ''),
       coalesce((SELECT group_concat(value, ' ') FROM json_tree(packets.doc, '$.context') WHERE type = 'text'), '')
FROM packets;
