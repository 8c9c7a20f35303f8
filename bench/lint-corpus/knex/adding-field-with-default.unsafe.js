// rule: adding-field-with-default
// verdict: unsafe
// context: an existing table (size unknown to both tools: no catalog); in knex's transaction
exports.up = async (knex) => {
  await knex.schema.alterTable('invoices', (t) => {
    t.uuid('public_id').defaultTo(knex.raw('gen_random_uuid()'));
  });
};
