-- rule: adding-field-with-default
-- verdict: safe
-- context: an existing table (size unknown to both tools: no catalog)
ALTER TABLE invoices ADD COLUMN status text DEFAULT 'pending';
