-- rule: require-concurrent-index-creation
-- verdict: safe
-- context: an existing table (size unknown to both tools: no catalog)
CREATE INDEX CONCURRENTLY invoices_customer_id_idx ON invoices (customer_id);
