// rule: adding-serial-primary-key-field
// verdict: unsafe
// context: an existing table (size unknown to both tools: no catalog); events_log.id exists, without a primary key; in knex's transaction
exports.up = async (knex) => {
  await knex.schema.alterTable('events_log', (t) => {
    t.primary(['id'], { constraintName: 'events_log_pkey' });
  });
};
