import type { Knex } from 'knex';
import { qualify } from '../sql/text.js';
import type { Fail } from './probe-site.js';

/** The migration's table as the catalog has it: the relation, its columns and the key its rows are walked by. */

export interface TableRelation {
  oid: number;
  relkind: string;
  relpersistence: string;
  estimate: string;
}

export interface RawColumn {
  name: string;
  typid: number;
  typmod: number;
  notNull: boolean;
}

/** The relation of that name, refused unless it is an ordinary or partitioned, permanent table. */
export async function findTable(
  trx: Knex.Transaction,
  schema: string,
  name: string,
  fail: Fail,
): Promise<TableRelation> {
  const where = `${schema}.${name}`;
  const rel = (
    await trx.raw(
      `SELECT c.oid::int AS oid, c.relkind, c.relpersistence, c.reltuples::bigint AS estimate
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ? AND c.relname = ?`,
      [schema, name],
    )
  ).rows[0] as TableRelation | undefined;
  if (!rel)
    return fail(
      'PF_UNKNOWN_TABLE',
      `Table ${where} does not exist.`,
      where,
      "Check the table name and schema (or the connection's search_path).",
    );
  if (rel.relkind !== 'r' && rel.relkind !== 'p')
    return fail(
      'PF_UNKNOWN_TABLE',
      `${where} is not a table (relkind ${rel.relkind}).`,
      where,
      'Migrate the underlying table, not a view or other relation.',
    );
  if (rel.relpersistence === 't')
    return fail(
      'PF_UNKNOWN_TABLE',
      `${where} is a temporary table.`,
      where,
      'Only a permanent table is visible to the other sessions a migration serves.',
    );
  return rel;
}

/** The table's live columns in attribute order, with their type identity (oid and typmod). */
export async function readColumns(trx: Knex.Transaction, oid: number): Promise<RawColumn[]> {
  return (
    await trx.raw(
      `SELECT a.attname AS name, a.atttypid::int AS typid, a.atttypmod AS typmod, a.attnotnull AS "notNull"
       FROM pg_attribute a WHERE a.attrelid = ? AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
      [oid],
    )
  ).rows as RawColumn[];
}

/**
 * The key backfill, verify, preflight, bisection and every row lookup walk the table by: a primary key, or else
 * (as pgroll does) a UNIQUE key whose columns are all NOT NULL, neither partial nor on expressions, immediate, and
 * valid. When there are several, the choice is deterministic: the primary key; then the key with the fewest
 * columns; then a unique constraint before a bare unique index; then by name.
 */
export interface RowKey {
  readonly columns: readonly string[];
  readonly kind: 'primary key' | 'unique constraint' | 'unique index';
  /** The constraint's name (or the index's, for a bare unique index). */
  readonly name: string;
}

/** Every eligible key of the table, best first (see RowKey); empty when it has none. */
export async function readRowKeys(trx: Knex.Transaction, oid: number): Promise<RowKey[]> {
  const rows = (
    await trx.raw<{ rows: { columns: string[]; kind: RowKey['kind']; name: string }[] }>(
      `SELECT (SELECT array_agg(a.attname ORDER BY k.ord)
                 FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                WHERE k.ord <= i.indnkeyatts)::text[] AS columns,
              CASE WHEN i.indisprimary THEN 'primary key' WHEN con.oid IS NOT NULL THEN 'unique constraint'
                   ELSE 'unique index' END AS kind,
              coalesce(con.conname, ic.relname)::text AS name
         FROM pg_index i
         JOIN pg_class ic ON ic.oid = i.indexrelid
         JOIN pg_am am ON am.oid = ic.relam AND am.amname = 'btree'
         LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u')
        WHERE i.indrelid = ? AND i.indisunique AND i.indisvalid AND i.indimmediate
          AND i.indpred IS NULL AND i.indexprs IS NULL
          AND NOT EXISTS (SELECT FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
                            JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                           WHERE k.ord <= i.indnkeyatts AND NOT a.attnotnull)
        ORDER BY i.indisprimary DESC, i.indnkeyatts, con.oid IS NULL, 3`,
      [oid],
    )
  ).rows;
  return rows.map((r) => ({ columns: r.columns, kind: r.kind, name: r.name }));
}

/**
 * reltuples is -1 until the table is first vacuumed or analyzed (always for a partitioned parent): the planner's
 * own row estimate (relation size over tuple width, partitions included) stands in, with no scan of the rows.
 */
export async function plannerEstimate(trx: Knex.Transaction, schema: string, name: string): Promise<number> {
  const rows = (await trx.raw(`EXPLAIN (FORMAT JSON) SELECT 1 FROM ${qualify(schema, name)}`)).rows as Array<{
    'QUERY PLAN': Array<{ Plan: { 'Plan Rows': number } }>;
  }>;
  return Math.max(0, Math.round(rows[0]?.['QUERY PLAN'][0]?.Plan['Plan Rows'] ?? 0));
}
