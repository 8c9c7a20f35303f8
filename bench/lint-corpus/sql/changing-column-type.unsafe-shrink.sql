-- rule: changing-column-type
-- verdict: unsafe
-- context: an existing table (size unknown to both tools: no catalog); note is varchar(200): shrinking checks every row
ALTER TABLE invoices ALTER COLUMN note TYPE varchar(50);
