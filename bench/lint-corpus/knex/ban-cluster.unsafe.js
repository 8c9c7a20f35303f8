// rule: ban-cluster
// verdict: unsafe
// context: an existing table (size unknown to both tools: no catalog); in knex's transaction
// disagreement: squawk 2.66 has no rule that fires on VACUUM FULL or CLUSTER
exports.up = async (knex) => {
  await knex.raw('CLUSTER invoices USING invoices_pkey');
};
