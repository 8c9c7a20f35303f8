-- rule: require-concurrent-reindex
-- verdict: unsafe
-- context: an existing table (size unknown to both tools: no catalog)
REINDEX INDEX invoices_customer_id_idx;
