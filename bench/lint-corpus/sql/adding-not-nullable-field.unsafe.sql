-- rule: adding-not-nullable-field
-- verdict: unsafe
-- context: an existing table (size unknown to both tools: no catalog)
ALTER TABLE invoices ALTER COLUMN customer_id SET NOT NULL;
