-- rule: adding-required-field
-- verdict: safe
-- context: an existing table (size unknown to both tools: no catalog)
ALTER TABLE invoices ADD COLUMN region text NOT NULL DEFAULT 'eu';
