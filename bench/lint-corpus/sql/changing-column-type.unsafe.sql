-- rule: changing-column-type
-- verdict: unsafe
-- context: an existing table (size unknown to both tools: no catalog); quantity is integer
ALTER TABLE invoices ALTER COLUMN quantity TYPE bigint;
