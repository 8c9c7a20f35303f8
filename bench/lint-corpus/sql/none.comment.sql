-- rule: none
-- verdict: safe
-- context: an existing table (size unknown to both tools: no catalog)
COMMENT ON COLUMN invoices.total IS 'gross amount, in the invoice currency';
