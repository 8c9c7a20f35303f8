-- rule: ban-concurrent-index-creation-in-transaction
-- verdict: unsafe
-- context: an existing table (size unknown to both tools: no catalog); an explicit transaction
BEGIN;
CREATE INDEX CONCURRENTLY invoices_issued_at_idx ON invoices (issued_at);
COMMIT;
