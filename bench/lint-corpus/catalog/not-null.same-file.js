// rule: adding-not-nullable-field
// verdict: safe
// context: a table created in the same file; in knex's transaction
// catalog: same-file
// disagreement: the table is created earlier in the same file, so nothing else can be using it yet; squawk judges the statement alone
exports.up = async (knex) => {
  await knex.schema.createTable('promo_codes', (t) => {
    t.bigInteger('id').primary();
    t.bigInteger('account_id');
    t.text('kind');
    t.bigInteger('amount');
    t.text('note');
    t.string('code', 20);
  });
  await knex.schema.alterTable('promo_codes', (t) => {
    t.dropNullable('kind');
  });
};
