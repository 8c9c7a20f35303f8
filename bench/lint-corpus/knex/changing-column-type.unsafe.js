// rule: changing-column-type
// verdict: unsafe
// context: an existing table (size unknown to both tools: no catalog); quantity is integer; in knex's transaction
exports.up = async (knex) => {
  await knex.schema.alterTable('invoices', (t) => {
    t.bigInteger('quantity').alter({ alterNullable: false });
  });
};
