-- rule: require-concurrent-index-creation
-- verdict: unsafe
-- context: an existing table (size unknown to both tools: no catalog)
CREATE INDEX invoices_customer_id_idx ON invoices (customer_id);
