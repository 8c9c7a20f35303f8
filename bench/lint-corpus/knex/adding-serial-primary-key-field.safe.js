// rule: adding-serial-primary-key-field
// verdict: safe
// context: an existing table (size unknown to both tools: no catalog); a unique index on events_log (id) built CONCURRENTLY by an earlier migration; in knex's transaction
exports.up = async (knex) => {
  await knex.raw('ALTER TABLE events_log ADD CONSTRAINT events_log_pkey PRIMARY KEY USING INDEX events_log_id_idx');
};
