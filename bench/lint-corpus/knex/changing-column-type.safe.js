// rule: changing-column-type
// verdict: safe
// context: an existing table (size unknown to both tools: no catalog); note is varchar(100); in knex's transaction
// disagreement: squawk flags every ALTER COLUMN … TYPE; this cast does not rewrite the table (PostgreSQL checks binary coercibility and typmod widening), so only a linter that knows the column's current type can clear it
exports.up = async (knex) => {
  await knex.schema.alterTable('invoices', (t) => {
    t.string('note', 200).alter({ alterNullable: false });
  });
};
