-- rule: require-lock-timeout
-- verdict: safe
-- context: an existing table (size unknown to both tools: no catalog); timeout rules on (elsewhere off)
SET lock_timeout = '2s';
SET statement_timeout = '30s';
ALTER TABLE invoices ADD COLUMN memo text;
