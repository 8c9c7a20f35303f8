-- rule: require-concurrent-reindex
-- verdict: safe
-- context: an existing table (size unknown to both tools: no catalog)
REINDEX TABLE CONCURRENTLY invoices;
