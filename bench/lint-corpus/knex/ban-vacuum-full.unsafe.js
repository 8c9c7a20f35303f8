// rule: ban-vacuum-full
// verdict: unsafe
// context: an existing table (size unknown to both tools: no catalog); outside a transaction (config.transaction false)
// disagreement: squawk 2.66 has no rule that fires on VACUUM FULL or CLUSTER
exports.config = { transaction: false };

exports.up = async (knex) => {
  await knex.raw('VACUUM FULL invoices');
};
