-- rule: changing-column-type
-- verdict: safe
-- context: a table created in the same file
-- catalog: same-file
-- disagreement: the table is created earlier in the same file, so nothing else can be using it yet; squawk judges the statement alone
CREATE TABLE promo_codes (id bigint PRIMARY KEY, account_id bigint, kind text, amount bigint, note text, code varchar(20));
ALTER TABLE promo_codes ALTER COLUMN amount TYPE numeric(20, 2);
