-- rule: adding-not-nullable-field
-- verdict: safe
-- context: an existing table (size unknown to both tools: no catalog); CHECK (customer_id IS NOT NULL) NOT VALID added by an earlier migration, validated here first
ALTER TABLE invoices VALIDATE CONSTRAINT invoices_customer_id_not_null;
ALTER TABLE invoices ALTER COLUMN customer_id SET NOT NULL;
