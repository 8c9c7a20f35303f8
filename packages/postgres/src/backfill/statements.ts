import { quoteIdent } from '@phaseflag/core';
import type { ResolvedMigration } from '../resolved.js';
import { displayKeySql, keyParam, keySql, qualifiedTable, TABLE_ALIAS } from './keys.js';

/**
 * The statements of one backfill batch, built once per run. Each batch is one short transaction:
 *
 *   phase     SELECT, no lock            is the migration still 'backfilling'? (skip the work if not)
 *   scan      pk index, no lock          the next `size` keys after the checkpoint, up to the range's upper key
 *   update    ROW EXCLUSIVE on the table, row locks only on the rows it changes
 *   commit    row lock on the migration row, held until COMMIT (milliseconds)
 *
 * Finding the batch's last key first and then updating `checkpoint < pk <= last` with constant bounds lets the
 * planner see a narrow pk range and use the index. Joining the UPDATE to a CTE of keys instead makes it hash-join
 * a sequential scan of the whole table once the table is large, i.e. a full scan per batch. The UPDATE re-reads
 * each row it changes at its newest version (READ COMMITTED re-evaluation), so a concurrent application write is
 * never overwritten with a value computed from an older row.
 *
 * The commit statement is the fence for pause and rollback: it only counts the batch while the phase is
 * 'backfilling', and its row lock on the migration row orders it against the engine's transition. A transition
 * that commits first makes it match nothing (the runner rolls the batch back); a batch that gets there first
 * makes the transition wait for its COMMIT. So once a transition away from 'backfilling' has committed, no batch
 * commits after it. Parallel workers only queue on that row for the moment of their commit; a shared lock taken
 * at the start of each batch would instead deadlock two workers both upgrading it.
 */
export interface BatchStatements {
  /** $1 migration id */
  readonly phase: string;
  /** $1 upper key, $2 limit */
  readonly scanFirst: string;
  /** $1 checkpoint key, $2 upper key, $3 limit */
  readonly scanNext: string;
  /** $1 batch's last key */
  readonly updateFirst: string;
  /** $1 checkpoint key, $2 batch's last key */
  readonly updateNext: string;
  /** $1 migration id, $2 worker, $3 rows examined, $4 new checkpoint (null: unchanged), $5 done */
  readonly commit: string;
}

export interface ScanRow {
  scanned: number;
  last_key: string | null;
  last_key_display: unknown[] | null;
  reached_upper: boolean | null;
}

export function newValueSql(r: ResolvedMigration, expression: string): string {
  // The explicit cast is the one verify applies too: comparing to the stored value after the same cast is what
  // keeps e.g. numeric(12,2) from looking different forever because the expression has more decimals.
  return `((${expression})::${r.newColumnType})`;
}

export function buildBatchStatements(r: ResolvedMigration, stateSchema: string, expression: string): BatchStatements {
  const table = qualifiedTable(r);
  const key = keySql(r.primaryKey);
  const aliases = r.primaryKey.map((_, i) => `__pf_key_${i}`);
  const select = key.qualified.map((c, i) => `${c} AS ${aliases[i]}`).join(', ');
  const aliasRow = `(${aliases.join(', ')})`;
  const aliasDesc = aliases.map((a) => `${a} DESC`).join(', ');
  const scan = (lower: string | null, upper: string, limit: string): string => `
    WITH batch AS (
      SELECT ${select} FROM ${table} AS ${TABLE_ALIAS}
       WHERE ${lower === null ? '' : `${key.row} > ${keyParam(r.primaryKey, lower)} AND `}${key.row} <= ${keyParam(r.primaryKey, upper)}
       ORDER BY ${key.list} LIMIT ${limit}
    ), last AS (SELECT * FROM batch ORDER BY ${aliasDesc} LIMIT 1)
    SELECT (SELECT count(*) FROM batch)::int AS scanned,
           (SELECT jsonb_build_array(${aliases.join(', ')})::text FROM last) AS last_key,
           (SELECT ${displayKeySql(`jsonb_build_array(${aliases.join(', ')})`)} FROM last) AS last_key_display,
           (SELECT ${aliasRow} >= ${keyParam(r.primaryKey, upper)} FROM last) AS reached_upper`;
  const newColumn = quoteIdent(r.migration.newColumn.name);
  const value = newValueSql(r, expression);
  const update = (lower: string | null, upper: string): string => `
    UPDATE ${table} AS ${TABLE_ALIAS} SET ${newColumn} = ${value}
     WHERE ${lower === null ? '' : `${key.row} > ${keyParam(r.primaryKey, lower)} AND `}${key.row} <= ${keyParam(r.primaryKey, upper)}
       AND ${TABLE_ALIAS}.${newColumn} IS DISTINCT FROM ${value}`;
  const s = quoteIdent(stateSchema);
  return {
    phase: `SELECT phase FROM ${s}.migrations WHERE id = $1`,
    scanFirst: scan(null, '$1', '$2'),
    scanNext: scan('$1', '$2', '$3'),
    updateFirst: update(null, '$1'),
    updateNext: update('$1', '$2'),
    commit: `
      WITH counted AS (
        UPDATE ${s}.migrations SET rows_backfilled = rows_backfilled + $3
         WHERE id = $1 AND phase = 'backfilling' RETURNING 1
      )
      UPDATE ${s}.backfill_ranges
         SET checkpoint = coalesce($4::jsonb, checkpoint), done = $5, rows_done = rows_done + $3,
             batches = batches + 1, updated_at = now()
       WHERE migration_id = $1 AND worker = $2 AND EXISTS (SELECT 1 FROM counted)
      RETURNING rows_done`,
  };
}
