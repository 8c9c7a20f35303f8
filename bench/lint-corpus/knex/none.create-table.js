// rule: none
// verdict: safe
// context: a new table; in knex's transaction
exports.up = async (knex) => {
  await knex.schema.createTable('credit_notes', (t) => {
    t.bigIncrements('id');
    t.bigInteger('invoice_id').notNullable();
    t.decimal('amount', 12, 2).notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
};
