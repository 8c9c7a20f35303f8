-- rule: require-lock-timeout
-- verdict: unsafe
-- context: an existing table (size unknown to both tools: no catalog); timeout rules on (elsewhere off)
ALTER TABLE invoices ADD COLUMN memo text;
