-- rule: none
-- verdict: safe
-- context: an existing table (size unknown to both tools: no catalog)
ALTER TABLE invoices ADD COLUMN paid_at timestamptz;
