// rule: adding-not-nullable-field
// verdict: safe
// context: an existing table (size unknown to both tools: no catalog); CHECK (customer_id IS NOT NULL) NOT VALID added by an earlier migration; in knex's transaction
exports.up = async (knex) => {
  await knex.raw('ALTER TABLE invoices VALIDATE CONSTRAINT invoices_customer_id_not_null');
  await knex.schema.alterTable('invoices', (t) => {
    t.dropNullable('customer_id');
  });
};
