import type { Knex } from 'knex';
import { TestkitError } from './errors.js';

/**
 * What to insert for each `g` in `1..rows` (the series column is named `g`):
 * - a record `{ column: knex.raw('expression') }`: names the target columns, so order cannot go wrong;
 * - a raw select-list `knex.raw('g AS id, ...')`: matched to the table's columns BY POSITION (Postgres ignores
 *   the aliases), unless `into` names the target columns;
 * - nothing: every column takes its default.
 */
export type SeedColumns = Knex.Raw | Record<string, Knex.Raw>;

export interface SeedTableOptions {
  table: string;
  rows: number;
  columns?: SeedColumns;
  /** Target columns for a raw select-list. */
  into?: string[];
  /**
   * Run ANALYZE afterwards (default true). Autovacuum has not seen a table seeded a moment ago, and plans or
   * row estimates asserted in a test should match what a production table with statistics would get.
   */
  analyze?: boolean;
}

/**
 * Fills a table in ONE `INSERT ... SELECT ... FROM generate_series(1, rows) AS g`: a single statement and a
 * single WAL-logged transaction, seconds faster than row loops at 100k rows. Returns the rows inserted.
 */
export async function seedTable(knex: Knex, options: SeedTableOptions): Promise<number> {
  const { table, rows, columns, into } = options;
  if (!Number.isSafeInteger(rows) || rows < 0) {
    throw new TestkitError(
      'PF_TESTKIT_INVALID_SEED',
      `seedTable: rows must be a non-negative integer, got ${JSON.stringify(rows)}.`,
      'Pass the number of rows to generate, e.g. { table: "orders", rows: 100000 }.',
    );
  }
  const { targets, selectList } = splitColumns(columns, into);
  const targetSql = targets.length > 0 ? ` (${targets.map(() => '??').join(', ')})` : '';
  const selectSql = selectList.map(() => '?').join(', ');
  const result = await knex.raw(
    `INSERT INTO ??${targetSql} SELECT ${selectSql} FROM generate_series(1, ?::bigint) AS g`,
    [table, ...targets, ...selectList, rows],
  );
  if (options.analyze ?? true) await knex.raw('ANALYZE ??', [table]);
  return (result as { rowCount?: number }).rowCount ?? rows;
}

/** Positional shorthand: `seed(knex, 'orders', 100_000, knex.raw('g AS id, ...'))`. */
export function seed(knex: Knex, table: string, rows: number, columns?: SeedColumns): Promise<number> {
  return seedTable(knex, { table, rows, ...(columns ? { columns } : {}) });
}

function splitColumns(
  columns: SeedColumns | undefined,
  into: string[] | undefined,
): { targets: string[]; selectList: Knex.Raw[] } {
  if (columns === undefined) return { targets: [], selectList: [] };
  if (isRaw(columns)) return { targets: into ?? [], selectList: [columns] };
  return { targets: Object.keys(columns), selectList: Object.values(columns) };
}

function isRaw(value: SeedColumns): value is Knex.Raw {
  // knex.raw() returns a Raw builder; a plain record of column expressions has no toSQL.
  return typeof (value as { toSQL?: unknown }).toSQL === 'function';
}
