-- rule: disallowed-unique-constraint
-- verdict: safe
-- context: an existing table (size unknown to both tools: no catalog); invoices_number_idx built CONCURRENTLY by an earlier migration
ALTER TABLE invoices ADD CONSTRAINT invoices_number_key UNIQUE USING INDEX invoices_number_idx;
