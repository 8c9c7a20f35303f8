// rule: require-concurrent-reindex
// verdict: safe
// context: an existing table (size unknown to both tools: no catalog); outside a transaction (config.transaction false)
exports.config = { transaction: false };

exports.up = async (knex) => {
  await knex.raw('REINDEX INDEX CONCURRENTLY invoices_customer_id_idx');
};
