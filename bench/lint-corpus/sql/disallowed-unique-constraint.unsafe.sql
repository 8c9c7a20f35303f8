-- rule: disallowed-unique-constraint
-- verdict: unsafe
-- context: an existing table (size unknown to both tools: no catalog)
ALTER TABLE invoices ADD CONSTRAINT invoices_number_key UNIQUE (number);
