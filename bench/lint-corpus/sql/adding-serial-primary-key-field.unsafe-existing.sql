-- rule: adding-serial-primary-key-field
-- verdict: unsafe
-- context: an existing table (size unknown to both tools: no catalog); events_log.id exists, without a primary key
ALTER TABLE events_log ADD PRIMARY KEY (id);
