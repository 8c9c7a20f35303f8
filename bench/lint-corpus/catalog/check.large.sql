-- rule: constraint-missing-not-valid
-- verdict: unsafe
-- context: a large table: audit_events, 300,000 rows built by the bench and ANALYZEd; phaseflag is given the live catalog
-- catalog: large
ALTER TABLE audit_events ADD CONSTRAINT audit_events_amount_positive CHECK (amount >= 0);
