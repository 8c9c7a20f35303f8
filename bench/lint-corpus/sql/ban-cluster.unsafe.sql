-- rule: ban-cluster
-- verdict: unsafe
-- context: an existing table (size unknown to both tools: no catalog)
-- disagreement: squawk 2.66 has no rule that fires on VACUUM FULL or CLUSTER
CLUSTER invoices USING invoices_pkey;
