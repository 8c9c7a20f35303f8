// rule: require-concurrent-index-deletion
// verdict: unsafe
// context: an existing table (size unknown to both tools: no catalog); in knex's transaction
exports.up = async (knex) => {
  await knex.schema.alterTable('invoices', (t) => {
    t.dropIndex([], 'invoices_customer_id_idx');
  });
};
