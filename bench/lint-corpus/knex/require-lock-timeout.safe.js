// rule: require-lock-timeout
// verdict: safe
// context: an existing table (size unknown to both tools: no catalog); timeout rules on (elsewhere off); in knex's transaction
exports.up = async (knex) => {
  await knex.raw("SET LOCAL lock_timeout = '2s'");
  await knex.raw("SET LOCAL statement_timeout = '30s'");
  await knex.schema.alterTable('invoices', (t) => {
    t.text('memo');
  });
};
