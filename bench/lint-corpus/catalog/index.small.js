// rule: require-concurrent-index-creation
// verdict: safe
// context: a small table: feature_settings, 100 rows built by the bench and ANALYZEd; phaseflag is given the live catalog; in knex's transaction
// catalog: small
// disagreement: squawk sees only the SQL: it cannot tell a table of 100 rows, where the lock lasts milliseconds, from a large one
exports.up = async (knex) => {
  await knex.schema.alterTable('feature_settings', (t) => {
    t.index(['account_id'], 'feature_settings_account_id_idx');
  });
};
