// rule: ban-drop-not-null
// verdict: safe
// context: a table created in the same file; in knex's transaction
// disagreement: the table is created earlier in the same file, so nothing else can be using it yet; squawk judges the statement alone
exports.up = async (knex) => {
  await knex.schema.createTable('drafts', (t) => {
    t.bigInteger('id').primary();
    t.text('number').notNullable();
    t.text('legacy_code');
  });
  await knex.schema.alterTable('drafts', (t) => {
    t.setNullable('number');
  });
};
