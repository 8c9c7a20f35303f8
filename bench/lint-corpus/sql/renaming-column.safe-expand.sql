-- rule: renaming-column
-- verdict: safe
-- context: an existing table (size unknown to both tools: no catalog); the expand step of a rename: the new column beside the old one
ALTER TABLE invoices ADD COLUMN invoice_number text;
