-- rule: changing-column-type
-- verdict: safe
-- context: an existing table (size unknown to both tools: no catalog); total is numeric(12,2)
-- disagreement: squawk flags every ALTER COLUMN … TYPE; this cast does not rewrite the table (PostgreSQL checks binary coercibility and typmod widening), so only a linter that knows the column's current type can clear it
ALTER TABLE invoices ALTER COLUMN total TYPE numeric(14,2);
