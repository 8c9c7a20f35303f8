// rule: validate-in-same-transaction
// verdict: safe
// context: an existing table (size unknown to both tools: no catalog); outside a transaction (config.transaction false)
exports.config = { transaction: false };

exports.up = async (knex) => {
  await knex.raw('ALTER TABLE invoices ADD CONSTRAINT invoices_total_positive CHECK (total >= 0) NOT VALID');
  await knex.raw('ALTER TABLE invoices VALIDATE CONSTRAINT invoices_total_positive');
};
