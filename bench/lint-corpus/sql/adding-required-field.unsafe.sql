-- rule: adding-required-field
-- verdict: unsafe
-- context: an existing table (size unknown to both tools: no catalog)
ALTER TABLE invoices ADD COLUMN region text NOT NULL;
