// rule: changing-column-type
// verdict: safe
// context: a large table: audit_events, 300,000 rows built by the bench and ANALYZEd; code is varchar(20); phaseflag is given the live catalog; in knex's transaction
// catalog: large
// disagreement: squawk flags every ALTER COLUMN … TYPE; the catalog says code is character varying(20), and widening a varchar (or making it text) does not rewrite the table, so phaseflag, given the catalog, clears it
exports.up = async (knex) => {
  await knex.schema.alterTable('audit_events', (t) => {
    t.string('code', 40).alter({ alterNullable: false });
  });
};
