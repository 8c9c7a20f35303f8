-- rule: renaming-table
-- verdict: unsafe
-- context: an existing table (size unknown to both tools: no catalog)
ALTER TABLE invoices RENAME TO bills;
