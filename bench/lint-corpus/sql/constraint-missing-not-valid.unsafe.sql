-- rule: constraint-missing-not-valid
-- verdict: unsafe
-- context: an existing table (size unknown to both tools: no catalog)
ALTER TABLE invoices ADD CONSTRAINT invoices_amount_positive CHECK (amount > 0);
