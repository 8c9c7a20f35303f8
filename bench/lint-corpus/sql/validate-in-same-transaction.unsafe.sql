-- rule: validate-in-same-transaction
-- verdict: unsafe
-- context: an existing table (size unknown to both tools: no catalog); an explicit transaction
BEGIN;
ALTER TABLE invoices ADD CONSTRAINT invoices_total_positive CHECK (total >= 0) NOT VALID;
ALTER TABLE invoices VALIDATE CONSTRAINT invoices_total_positive;
COMMIT;
