-- rule: adding-serial-primary-key-field
-- verdict: unsafe
-- context: an existing table (size unknown to both tools: no catalog); events_log has no primary key
ALTER TABLE events_log ADD COLUMN id bigserial PRIMARY KEY;
