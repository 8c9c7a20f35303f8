-- rule: changing-column-type
-- verdict: unsafe
-- context: a large table: audit_events, 300,000 rows built by the bench and ANALYZEd; phaseflag is given the live catalog
-- catalog: large
ALTER TABLE audit_events ALTER COLUMN amount TYPE numeric(20, 2);
