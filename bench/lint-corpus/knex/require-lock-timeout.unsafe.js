// rule: require-lock-timeout
// verdict: unsafe
// context: an existing table (size unknown to both tools: no catalog); timeout rules on (elsewhere off); in knex's transaction
exports.up = async (knex) => {
  await knex.schema.alterTable('invoices', (t) => {
    t.text('memo');
  });
};
