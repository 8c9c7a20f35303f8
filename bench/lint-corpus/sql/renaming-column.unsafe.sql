-- rule: renaming-column
-- verdict: unsafe
-- context: an existing table (size unknown to both tools: no catalog)
ALTER TABLE invoices RENAME COLUMN number TO invoice_number;
