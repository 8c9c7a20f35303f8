-- rule: adding-field-with-default
-- verdict: unsafe
-- context: an existing table (size unknown to both tools: no catalog); PostgreSQL 10, before constant defaults stopped rewriting the table
-- pg: 10
ALTER TABLE invoices ADD COLUMN status text DEFAULT 'pending';
