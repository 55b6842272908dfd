-- Verified handoffs (docs/api.md decision 12): the outcome of a packet's claims, PASS, CAUGHT or ERROR, or NULL for a
-- packet created without claims; kept beside the document for the listing and search filter `verification=`.
ALTER TABLE packets ADD COLUMN verification TEXT;
