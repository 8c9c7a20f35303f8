// rule: disallowed-unique-constraint
// verdict: unsafe
// context: an existing table (size unknown to both tools: no catalog); in knex's transaction
exports.up = async (knex) => {
  await knex.schema.alterTable('invoices', (t) => {
    t.unique(['number'], { indexName: 'invoices_number_key', useConstraint: true });
  });
};
