// rule: adding-foreign-key-constraint
// verdict: safe
// context: an existing table (size unknown to both tools: no catalog); in knex's transaction
exports.up = async (knex) => {
  await knex.raw(
    'ALTER TABLE invoices ADD CONSTRAINT invoices_customer_id_fkey FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID',
  );
};
