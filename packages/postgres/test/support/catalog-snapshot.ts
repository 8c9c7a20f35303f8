import type { Knex } from 'knex';

/**
 * Everything a refused or repeated step could have changed in a schema, as plain data to compare with deepEqual:
 * relations, columns (type, NOT NULL, default), constraints (with validation state), indexes (with validity),
 * triggers and functions. Temporary objects are listed across every session, so a leaked probe shows up too.
 */
export async function catalogSnapshot(knex: Knex, schemas: string[]): Promise<unknown> {
  const q = async (sql: string) => (await knex.raw(sql, [schemas])).rows;
  return {
    relations: await q(`SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                         WHERE n.nspname = ANY(?) ORDER BY 1`),
    columns:
      await q(`SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull, pg_get_expr(d.adbin, d.adrelid) AS def
                        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                       WHERE n.nspname = ANY(?) AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped ORDER BY 1, 2`),
    dropped:
      await q(`SELECT count(*)::int AS n FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                       WHERE n.nspname = ANY(?) AND a.attisdropped`),
    constraints: await q(`SELECT con.conname, con.contype, con.convalidated, pg_get_constraintdef(con.oid) AS def
                            FROM pg_constraint con JOIN pg_namespace n ON n.oid = con.connamespace WHERE n.nspname = ANY(?) ORDER BY 1`),
    indexes:
      await q(`SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                       WHERE n.nspname = ANY(?) ORDER BY 1`),
    triggers:
      await q(`SELECT t.tgname, t.tgenabled FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                        WHERE n.nspname = ANY(?) AND NOT t.tgisinternal ORDER BY 1`),
    functions: await q(
      `SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = ANY(?) ORDER BY 1`,
    ),
  };
}

/** Probe objects (pf_probe_*, pf_type_probe) visible in any session's temporary schema. */
export async function leakedProbeObjects(knex: Knex): Promise<string[]> {
  return (
    await knex.raw(
      `SELECT n.nspname || '.' || c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname LIKE 'pg_temp%' AND (c.relname LIKE 'pf_probe%' OR c.relname LIKE 'pf_type_probe%')`,
    )
  ).rows.map((r: { name: string }) => r.name);
}
