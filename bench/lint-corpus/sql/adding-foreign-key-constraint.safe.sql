-- rule: adding-foreign-key-constraint
-- verdict: safe
-- context: an existing table (size unknown to both tools: no catalog)
ALTER TABLE invoices ADD CONSTRAINT invoices_customer_id_fkey FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;
