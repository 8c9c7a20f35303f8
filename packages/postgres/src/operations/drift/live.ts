import { CatalogError, quoteIdent, type Migration } from '@phaseflag/core';
import type { Knex } from 'knex';
import { probeType } from '../../catalog/declared.js';
import { inRolledBackTransaction, type Fail } from '../../catalog/probe-site.js';

/**
 * Catalog reads the drift inspection needs beyond the steps' own (catalog/state.ts): a column with its default,
 * a foreign key, the sync function's source, and what the declaration's type and default look like once Postgres
 * has spelled them. Every type and expression is spelled with only pg_catalog on the search_path, as
 * resolve.ts spells them, so the texts compare.
 */

export interface LiveColumnWithDefault {
  readonly type: string;
  readonly notNull: boolean;
  /** pg_get_expr of the column's default; null when it has none. */
  readonly default: string | null;
}

export async function readColumns(
  knex: Knex,
  schema: string,
  table: string,
  columns: readonly string[],
): Promise<Map<string, LiveColumnWithDefault>> {
  return knex.transaction(async (trx) => {
    await trx.raw("SELECT set_config('search_path', 'pg_catalog', true)");
    const rows = (
      await trx.raw(
        `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS "notNull",
                pg_get_expr(d.adbin, d.adrelid) AS "default"
           FROM pg_attribute a
           JOIN pg_class c ON c.oid = a.attrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace
           LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
          WHERE n.nspname = ? AND c.relname = ? AND a.attname = ANY(?::text[]) AND a.attnum > 0 AND NOT a.attisdropped`,
        [schema, table, columns],
      )
    ).rows as (LiveColumnWithDefault & { name: string })[];
    return new Map(rows.map(({ name, ...c }) => [name, c]));
  });
}

/** Whether the table exists (any relation kind that holds rows). */
export async function tableExists(knex: Knex, schema: string, table: string): Promise<boolean> {
  const rows = (
    await knex.raw(
      `SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ? AND c.relname = ? AND c.relkind IN ('r', 'p')`,
      [schema, table],
    )
  ).rows;
  return rows.length > 0;
}

export type LiveForeignKey =
  | { readonly kind: 'missing' }
  | {
      readonly kind: 'present';
      readonly validated: boolean;
      readonly definition: string;
      readonly foreignKey: boolean;
    };

export async function readForeignKey(knex: Knex, schema: string, table: string, name: string): Promise<LiveForeignKey> {
  const row = (
    await knex.raw(
      `SELECT con.contype = 'f' AS "foreignKey", con.convalidated AS validated, pg_get_constraintdef(con.oid) AS definition
         FROM pg_constraint con
         JOIN pg_class c ON c.oid = con.conrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ? AND c.relname = ? AND con.conname = ?`,
      [schema, table, name],
    )
  ).rows[0] as { foreignKey: boolean; validated: boolean; definition: string } | undefined;
  return row ? { kind: 'present', ...row } : { kind: 'missing' };
}

/** The source of a function without arguments (what follows AS in its CREATE), or null when there is none. */
export async function readFunctionSource(knex: Knex, schema: string, name: string): Promise<string | null> {
  const row = (
    await knex.raw('SELECT prosrc FROM pg_proc WHERE oid = to_regprocedure(?)', [
      `${quoteIdent(schema)}.${quoteIdent(name)}()`,
    ])
  ).rows[0] as { prosrc: string } | undefined;
  return row?.prosrc ?? null;
}

const fail: Fail = (code, message, value, hint) => {
  throw new CatalogError(code, message, { value, hint });
};

/** The declared type as format_type spells it, checked on a temporary table that is rolled back. */
export function declaredType(knex: Knex, migration: Migration): Promise<string> {
  return inRolledBackTransaction(knex, async (trx) => {
    const t = await probeType(trx, migration, fail);
    await trx.raw("SELECT set_config('search_path', 'pg_catalog', true)");
    return (await trx.raw('SELECT format_type(?, ?) AS type', [t.typid, t.typmod])).rows[0].type as string;
  });
}

/**
 * A default expression as pg_get_expr gives it back once stored, so that it compares with a live column's: the
 * expression is stored on a temporary column of the type, in a transaction that is rolled back.
 */
export function storedDefault(knex: Knex, type: string, expression: string): Promise<string | null> {
  return inRolledBackTransaction(knex, async (trx) => {
    await trx.raw("SELECT set_config('search_path', 'pg_catalog', true)");
    await trx.raw(`CREATE TEMP TABLE pf_drift_default (v ${type} DEFAULT ${expression})`);
    const row = (
      await trx.raw(
        "SELECT pg_get_expr(adbin, adrelid) AS d FROM pg_attrdef WHERE adrelid = 'pg_temp.pf_drift_default'::regclass",
      )
    ).rows[0] as { d: string } | undefined;
    return row?.d ?? null;
  });
}
