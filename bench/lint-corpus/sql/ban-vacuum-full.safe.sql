-- rule: ban-vacuum-full
-- verdict: safe
-- context: an existing table (size unknown to both tools: no catalog)
VACUUM (ANALYZE) invoices;
