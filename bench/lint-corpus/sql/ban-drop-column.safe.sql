-- rule: ban-drop-column
-- verdict: safe
-- context: a table created in the same file
-- disagreement: the table is created earlier in the same file, so nothing else can be using it yet; squawk judges the statement alone
CREATE TABLE drafts (id bigint PRIMARY KEY, number text NOT NULL, legacy_code text);
ALTER TABLE drafts DROP COLUMN legacy_code;
