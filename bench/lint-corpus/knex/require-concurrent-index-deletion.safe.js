// rule: require-concurrent-index-deletion
// verdict: safe
// context: an existing table (size unknown to both tools: no catalog); outside a transaction (config.transaction false)
exports.config = { transaction: false };

exports.up = async (knex) => {
  await knex.raw('DROP INDEX CONCURRENTLY invoices_customer_id_idx');
};
