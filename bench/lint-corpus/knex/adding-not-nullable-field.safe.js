// rule: adding-not-nullable-field
// verdict: safe
// context: an existing table (size unknown to both tools: no catalog); CHECK (customer_id IS NOT NULL) NOT VALID added by an earlier migration; in knex's transaction
// disagreement: a validated CHECK (customer_id IS NOT NULL) lets PostgreSQL 12+ skip the scan of SET NOT NULL; squawk flags SET NOT NULL whatever precedes it
exports.up = async (knex) => {
  await knex.raw('ALTER TABLE invoices VALIDATE CONSTRAINT invoices_customer_id_not_null');
  await knex.schema.alterTable('invoices', (t) => {
    t.dropNullable('customer_id');
  });
};
