// rule: ban-drop-column
// verdict: unsafe
// context: an existing table (size unknown to both tools: no catalog); in knex's transaction
exports.up = async (knex) => {
  await knex.schema.alterTable('invoices', (t) => {
    t.dropColumn('legacy_code');
  });
};
