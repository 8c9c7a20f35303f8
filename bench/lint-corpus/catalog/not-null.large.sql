-- rule: adding-not-nullable-field
-- verdict: unsafe
-- context: a large table: audit_events, 300,000 rows built by the bench and ANALYZEd; phaseflag is given the live catalog
-- catalog: large
ALTER TABLE audit_events ALTER COLUMN kind SET NOT NULL;
