// rule: adding-not-nullable-field
// verdict: unsafe
// context: a large table: audit_events, 300,000 rows built by the bench and ANALYZEd; phaseflag is given the live catalog; in knex's transaction
// catalog: large
exports.up = async (knex) => {
  await knex.schema.alterTable('audit_events', (t) => {
    t.dropNullable('kind');
  });
};
