-- rule: require-concurrent-reindex
-- verdict: unsafe
-- context: an existing table (size unknown to both tools: no catalog)
REINDEX TABLE invoices;
