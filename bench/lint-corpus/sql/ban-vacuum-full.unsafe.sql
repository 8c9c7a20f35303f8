-- rule: ban-vacuum-full
-- verdict: unsafe
-- context: an existing table (size unknown to both tools: no catalog)
-- disagreement: squawk 2.66 has no rule that fires on VACUUM FULL or CLUSTER
VACUUM FULL invoices;
