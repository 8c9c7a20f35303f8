-- rule: disallowed-unique-constraint
-- verdict: safe
-- context: an existing table (size unknown to both tools: no catalog)
CREATE UNIQUE INDEX CONCURRENTLY invoices_number_idx ON invoices (number);
