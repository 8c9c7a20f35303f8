-- rule: require-concurrent-index-deletion
-- verdict: safe
-- context: an existing table (size unknown to both tools: no catalog)
DROP INDEX CONCURRENTLY invoices_customer_id_idx;
