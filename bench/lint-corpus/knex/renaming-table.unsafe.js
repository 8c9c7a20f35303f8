// rule: renaming-table
// verdict: unsafe
// context: an existing table (size unknown to both tools: no catalog); in knex's transaction
exports.up = async (knex) => {
  await knex.schema.renameTable('invoices', 'bills');
};
