// rule: adding-required-field
// verdict: safe
// context: an existing table (size unknown to both tools: no catalog); in knex's transaction
exports.up = async (knex) => {
  await knex.schema.alterTable('invoices', (t) => {
    t.text('region').notNullable().defaultTo('eu');
  });
};
