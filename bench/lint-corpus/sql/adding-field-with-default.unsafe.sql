-- rule: adding-field-with-default
-- verdict: unsafe
-- context: an existing table (size unknown to both tools: no catalog)
ALTER TABLE invoices ADD COLUMN public_id uuid DEFAULT gen_random_uuid();
