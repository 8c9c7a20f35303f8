// rule: ban-concurrent-index-creation-in-transaction
// verdict: safe
// context: an existing table (size unknown to both tools: no catalog); outside a transaction (config.transaction false)
exports.config = { transaction: false };

exports.up = async (knex) => {
  await knex.raw('CREATE INDEX CONCURRENTLY invoices_issued_at_idx ON invoices (issued_at)');
};
