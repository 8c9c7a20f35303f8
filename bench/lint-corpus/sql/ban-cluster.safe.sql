-- rule: ban-cluster
-- verdict: safe
-- context: a table created in the same file
CREATE TABLE drafts (id bigint PRIMARY KEY, number text NOT NULL, legacy_code text);
CLUSTER drafts USING drafts_pkey;
