-- rule: ban-drop-column
-- verdict: unsafe
-- context: an existing table (size unknown to both tools: no catalog)
ALTER TABLE invoices DROP COLUMN legacy_code;
