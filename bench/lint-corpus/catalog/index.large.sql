-- rule: require-concurrent-index-creation
-- verdict: unsafe
-- context: a large table: audit_events, 300,000 rows built by the bench and ANALYZEd; phaseflag is given the live catalog
-- catalog: large
CREATE INDEX audit_events_account_id_idx ON audit_events (account_id);
