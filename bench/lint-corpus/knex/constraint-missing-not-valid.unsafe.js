// rule: constraint-missing-not-valid
// verdict: unsafe
// context: an existing table (size unknown to both tools: no catalog); in knex's transaction
exports.up = async (knex) => {
  await knex.schema.alterTable('invoices', (t) => {
    t.check('amount > 0', [], 'invoices_amount_positive');
  });
};
