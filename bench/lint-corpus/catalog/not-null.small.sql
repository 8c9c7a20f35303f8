-- rule: adding-not-nullable-field
-- verdict: safe
-- context: a small table: feature_settings, 100 rows built by the bench and ANALYZEd; phaseflag is given the live catalog
-- catalog: small
-- disagreement: squawk sees only the SQL: it cannot tell a table of 100 rows, where the lock lasts milliseconds, from a large one
ALTER TABLE feature_settings ALTER COLUMN kind SET NOT NULL;
