-- rule: adding-field-with-default
-- verdict: safe
-- context: an existing table (size unknown to both tools: no catalog); now() is STABLE: evaluated once, stored in the catalog, no rewrite
ALTER TABLE invoices ADD COLUMN created_at timestamptz DEFAULT now();
