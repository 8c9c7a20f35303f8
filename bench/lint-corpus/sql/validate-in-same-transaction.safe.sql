-- rule: validate-in-same-transaction
-- verdict: safe
-- context: an existing table (size unknown to both tools: no catalog); no transaction: each statement commits on its own
ALTER TABLE invoices ADD CONSTRAINT invoices_total_positive CHECK (total >= 0) NOT VALID;
ALTER TABLE invoices VALIDATE CONSTRAINT invoices_total_positive;
