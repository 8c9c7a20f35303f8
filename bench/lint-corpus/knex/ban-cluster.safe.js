// rule: ban-cluster
// verdict: safe
// context: a table created in the same file; in knex's transaction
exports.up = async (knex) => {
  await knex.schema.createTable('drafts', (t) => {
    t.bigInteger('id').primary();
    t.text('number').notNullable();
    t.text('legacy_code');
  });
  await knex.raw('CLUSTER drafts USING drafts_pkey');
};
