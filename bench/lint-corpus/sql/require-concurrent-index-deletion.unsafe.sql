-- rule: require-concurrent-index-deletion
-- verdict: unsafe
-- context: an existing table (size unknown to both tools: no catalog)
DROP INDEX invoices_customer_id_idx;
