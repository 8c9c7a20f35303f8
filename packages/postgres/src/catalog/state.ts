import type { Knex } from 'knex';

/**
 * Reads of the live state of the objects a migration creates. Steps consult them before acting so that apply is
 * idempotent (skip what is already right, without taking any lock) and resumable (finish what a failed run left
 * half done), and so that an object of the same name that is not ours is reported instead of silently reused:
 * `IF NOT EXISTS` alone would accept a same-named index on another column as "done".
 */
type Db = Knex | Knex.Transaction;

export interface LiveColumn {
  /** format_type() with only pg_catalog on the search_path: comparable with ResolvedMigration's types. */
  readonly type: string;
  readonly notNull: boolean;
}

export async function readColumn(
  knex: Knex,
  schema: string,
  table: string,
  column: string,
): Promise<LiveColumn | null> {
  return knex.transaction(async (trx) => {
    await trx.raw("SELECT set_config('search_path', 'pg_catalog', true)");
    const row = (
      await trx.raw(
        `SELECT format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS "notNull"
         FROM pg_attribute a
         JOIN pg_class c ON c.oid = a.attrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ? AND c.relname = ? AND a.attname = ? AND a.attnum > 0 AND NOT a.attisdropped`,
        [schema, table, column],
      )
    ).rows[0] as LiveColumn | undefined;
    return row ?? null;
  });
}

export type IndexState =
  | { readonly kind: 'missing' }
  /** Ours: a plain (or UNIQUE, as declared) btree index on exactly the new column. valid=false after a failed CONCURRENTLY build. */
  | { readonly kind: 'ours'; readonly valid: boolean }
  | { readonly kind: 'foreign'; readonly detail: string };

export async function readIndexState(
  db: Db,
  schema: string,
  table: string,
  index: string,
  column: string,
  unique: boolean,
): Promise<IndexState> {
  const row = (
    await db.raw(
      `SELECT c.relkind,
            i.indrelid = t.oid AS "sameTable",
            i.indnatts = 1 AND i.indexprs IS NULL AND i.indpred IS NULL
              AND i.indkey[0] = (SELECT attnum FROM pg_attribute WHERE attrelid = t.oid AND attname = ? AND NOT attisdropped) AS "sameColumn",
            i.indisunique AS "unique", i.indisvalid AS valid
       FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_index i ON i.indexrelid = c.oid
       LEFT JOIN pg_class t ON t.relnamespace = n.oid AND t.relname = ?
      WHERE n.nspname = ? AND c.relname = ?`,
      [column, table, schema, index],
    )
  ).rows[0] as
    | {
        relkind: string;
        sameTable: boolean | null;
        sameColumn: boolean | null;
        unique: boolean | null;
        valid: boolean | null;
      }
    | undefined;
  if (!row) return { kind: 'missing' };
  // 'I': a partitioned table's index (built ON ONLY, valid once every partition's index is attached).
  if (row.relkind !== 'i' && row.relkind !== 'I')
    return { kind: 'foreign', detail: `"${index}" is a relation of kind ${row.relkind}, not an index` };
  if (!row.sameTable || !row.sameColumn)
    return { kind: 'foreign', detail: `index "${index}" exists on other column(s) or another table` };
  if (row.unique !== unique)
    return { kind: 'foreign', detail: `index "${index}" exists but is ${row.unique ? '' : 'not '}UNIQUE` };
  return { kind: 'ours', valid: row.valid === true };
}

export type ConstraintState =
  | { readonly kind: 'missing' }
  | { readonly kind: 'check'; readonly validated: boolean; readonly definition: string }
  | { readonly kind: 'foreign'; readonly detail: string };

export async function readConstraint(db: Db, schema: string, table: string, name: string): Promise<ConstraintState> {
  const row = (
    await db.raw(
      `SELECT con.contype, con.convalidated AS validated, pg_get_constraintdef(con.oid) AS definition
       FROM pg_constraint con
       JOIN pg_class c ON c.oid = con.conrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = ? AND c.relname = ? AND con.conname = ?`,
      [schema, table, name],
    )
  ).rows[0] as { contype: string; validated: boolean; definition: string } | undefined;
  if (!row) return { kind: 'missing' };
  if (row.contype !== 'c')
    return { kind: 'foreign', detail: `constraint "${name}" exists and is not a CHECK (${row.definition})` };
  return { kind: 'check', validated: row.validated, definition: row.definition };
}

export interface TriggerState {
  readonly exists: boolean;
  /** Fires for ordinary sessions (tgenabled 'O' or 'A'); 'D' is disabled, 'R' replica-only. */
  readonly enabled: boolean;
  /** Calls the expected function, BEFORE <events> FOR EACH ROW (the WHEN clause aside). */
  readonly matches: boolean;
  /** `pg_get_triggerdef`: the caller compares the WHEN clause. */
  readonly definition: string | null;
}

/** tgtype bits: 1 ROW, 2 BEFORE, 4 INSERT, 16 UPDATE (pg_trigger.h); 8 DELETE 32 TRUNCATE and 64 INSTEAD clear. */
const TGTYPE = { INSERT: 7, UPDATE: 19 } as const;

export async function readTrigger(
  db: Db,
  schema: string,
  table: string,
  trigger: string,
  fnSchema: string,
  fn: string,
  events: keyof typeof TGTYPE,
): Promise<TriggerState> {
  const row = (
    await db.raw(
      `SELECT tg.tgenabled IN ('O', 'A') AS enabled, pg_get_triggerdef(tg.oid) AS definition,
            tg.tgtype::int & 127 = ? AND p.proname = ? AND pn.nspname = ? AS matches
       FROM pg_trigger tg
       JOIN pg_class c ON c.oid = tg.tgrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_proc p ON p.oid = tg.tgfoid
       JOIN pg_namespace pn ON pn.oid = p.pronamespace
      WHERE n.nspname = ? AND c.relname = ? AND tg.tgname = ? AND NOT tg.tgisinternal`,
      [TGTYPE[events], fn, fnSchema, schema, table, trigger],
    )
  ).rows[0] as { enabled: boolean; matches: boolean; definition: string } | undefined;
  return row
    ? { exists: true, enabled: row.enabled, matches: row.matches, definition: row.definition }
    : { exists: false, enabled: false, matches: false, definition: null };
}
