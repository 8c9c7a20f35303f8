-- rule: require-concurrent-index-creation
-- verdict: safe
-- context: a table created in the same file
-- catalog: same-file
-- disagreement: the table is created earlier in the same file, so nothing else can be using it yet; squawk judges the statement alone
CREATE TABLE promo_codes (id bigint PRIMARY KEY, account_id bigint, kind text, amount bigint, note text, code varchar(20));
CREATE INDEX promo_codes_account_id_idx ON promo_codes (account_id);
