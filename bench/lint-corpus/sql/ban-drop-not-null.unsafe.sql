-- rule: ban-drop-not-null
-- verdict: unsafe
-- context: an existing table (size unknown to both tools: no catalog)
ALTER TABLE invoices ALTER COLUMN number DROP NOT NULL;
