// rule: adding-foreign-key-constraint
// verdict: unsafe
// context: an existing table (size unknown to both tools: no catalog); in knex's transaction
exports.up = async (knex) => {
  await knex.schema.alterTable('invoices', (t) => {
    t.foreign('customer_id', 'invoices_customer_id_fkey').references('customers.id');
  });
};
