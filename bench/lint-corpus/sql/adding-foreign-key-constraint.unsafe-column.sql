-- rule: adding-foreign-key-constraint
-- verdict: unsafe
-- context: an existing table (size unknown to both tools: no catalog)
ALTER TABLE invoices ADD COLUMN payer_id bigint REFERENCES customers (id);
