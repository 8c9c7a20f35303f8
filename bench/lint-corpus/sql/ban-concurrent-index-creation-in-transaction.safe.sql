-- rule: ban-concurrent-index-creation-in-transaction
-- verdict: safe
-- context: an existing table (size unknown to both tools: no catalog); no transaction
CREATE INDEX CONCURRENTLY invoices_issued_at_idx ON invoices (issued_at);
