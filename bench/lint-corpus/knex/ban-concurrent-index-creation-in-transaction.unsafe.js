// rule: ban-concurrent-index-creation-in-transaction
// verdict: unsafe
// context: an existing table (size unknown to both tools: no catalog); in knex's transaction (the team forgot config.transaction)
// disagreement: squawk 2.66 flags CREATE INDEX CONCURRENTLY only inside an explicit BEGIN; with --assume-in-transaction (knex's transaction) it says nothing, though PostgreSQL refuses the statement there
exports.up = async (knex) => {
  await knex.raw('CREATE INDEX CONCURRENTLY invoices_issued_at_idx ON invoices (issued_at)');
};
