import { ATTR, METRIC } from '@phaseflag/core';
import type { ExecutorContext } from '../../context.js';
import type { ResolvedMigration } from '../../catalog/resolved.js';
import { displayKeySql, keyParam, keySql, qualifiedTable, TABLE_ALIAS } from '../backfill/keys.js';
import { Session } from '../../driver/session.js';
import { newValueSql } from '../backfill/statements.js';
import { quoteIdent } from '@phaseflag/core';
import { isRowLevelError, type FailedRow } from './bisect.js';

/** Who found a row the backfill expression cannot derive. */
export type UnderivableSource = 'trigger' | 'preflight' | 'backfill' | 'verify';

/** A row recorded in the state schema's `underivable` table: it blocks `verified` until it derives again. */
export interface UnderivableRow {
  /** The primary key values, in key order (integers beyond 2^53 as strings). */
  readonly key: unknown[];
  /** The old column's value as text when it was recorded. */
  readonly oldValue: string | null;
  /** Postgres's error message (for a reverse that failed, prefixed "reverse of <new value>: "). */
  readonly error: string;
  readonly sqlstate: string | null;
  readonly source: UnderivableSource;
  readonly recordedAt: Date;
}

/** How many rows are recorded, and the first of them in key order. */
export interface UnderivableSummary {
  readonly count: number;
  /** Of them, rows the backfill stopped on (source 'backfill'). */
  readonly stoppedBackfill: number;
  readonly rows: readonly UnderivableRow[];
}

/** Records rows phaseflag itself found (one statement); a key already recorded gets the newest error and keeps its first source. */
export async function recordUnderivable(
  ctx: ExecutorContext,
  migrationId: string,
  rows: readonly FailedRow[],
  source: UnderivableSource,
): Promise<void> {
  if (rows.length === 0) return;
  await ctx.knex.raw(
    `INSERT INTO ??.underivable (migration_id, key, old_value, error, sqlstate, source)
     SELECT ?, x.key, x.old_value, x.error, x.sqlstate, ? FROM jsonb_to_recordset(?::jsonb) AS x(key jsonb, old_value text, error text, sqlstate text)
     ON CONFLICT (migration_id, key) DO UPDATE SET old_value = EXCLUDED.old_value, error = EXCLUDED.error, sqlstate = EXCLUDED.sqlstate,
       recorded_at = clock_timestamp()`,
    [
      ctx.stateSchema,
      migrationId,
      source,
      JSON.stringify(
        rows.map((r) => ({ key: JSON.parse(r.keyText), old_value: r.oldValue, error: r.error, sqlstate: r.sqlstate })),
      ),
    ],
  );
  ctx.meter
    .createCounter(METRIC.underivableRecorded, {
      unit: '{row}',
      description: 'Rows phaseflag found that the backfill expression cannot derive',
    })
    .add(rows.length, { [ATTR.migrationId]: migrationId, [ATTR.source]: source });
}

/** The count and the first `limit` rows in key order; sets the underivable gauge to the count. */
export async function underivableSummary(
  ctx: ExecutorContext,
  migrationId: string,
  limit = 10,
): Promise<UnderivableSummary> {
  const { rows } = await ctx.knex.raw<{ rows: Record<string, unknown>[] }>(
    `SELECT count(*) OVER ()::int AS total, (count(*) FILTER (WHERE u.source = 'backfill') OVER ())::int AS stopped, ${displayKeySql('u.key')} AS key, u.old_value, u.error, u.sqlstate, u.source, u.recorded_at
       FROM ??.underivable u WHERE u.migration_id = ? ORDER BY u.key LIMIT ?`,
    [ctx.stateSchema, migrationId, Math.max(1, limit)],
  );
  const count = rows.length === 0 ? 0 : Number(rows[0]!.total);
  const stoppedBackfill = rows.length === 0 ? 0 : Number(rows[0]!.stopped);
  ctx.meter
    .createGauge(METRIC.underivableRows, {
      unit: '{row}',
      description: 'Rows recorded as not derivable by the backfill expression; they block verified',
    })
    .record(count, { [ATTR.migrationId]: migrationId });
  return {
    count,
    stoppedBackfill,
    rows: rows.slice(0, limit).map((r) => ({
      key: r.key as unknown[],
      oldValue: r.old_value as string | null,
      error: r.error as string,
      sqlstate: r.sqlstate as string | null,
      source: r.source as UnderivableSource,
      recordedAt: r.recorded_at as Date,
    })),
  };
}

/** Every recorded key (jsonb text) with its first source, in key order. */
export async function recordedKeys(ctx: ExecutorContext, migrationId: string): Promise<Map<string, UnderivableSource>> {
  const { rows } = await ctx.knex.raw<{ rows: { key: string; source: UnderivableSource }[] }>(
    'SELECT key::text AS key, source FROM ??.underivable WHERE migration_id = ? ORDER BY key',
    [ctx.stateSchema, migrationId],
  );
  return new Map(rows.map((r) => [r.key, r.source]));
}

/**
 * Re-examines every recorded row, one short read-only statement each (an error on one row must not hide the
 * others): a row that no longer exists, or whose new column now equals the expression over it (fixed by hand,
 * or re-derived by the trigger on its next write), is removed from the record; one that still fails gets its
 * newest error. Returns how many were removed.
 */
export async function clearResolvedUnderivable(ctx: ExecutorContext, r: ResolvedMigration): Promise<number> {
  const expression = r.migration.backfill;
  const id = r.migration.id;
  if (expression === null) return 0;
  const keys = [...(await recordedKeys(ctx, id)).keys()];
  if (keys.length === 0) return 0;
  const key = keySql(r.primaryKey);
  const newColumn = `${TABLE_ALIAS}.${quoteIdent(r.migration.newColumn.name)}`;
  const sql = `SELECT ${newColumn} IS NOT DISTINCT FROM ${newValueSql(r, expression)} AS derived
                 FROM ${qualifiedTable(r)} AS ${TABLE_ALIAS} WHERE ${key.row} = ${keyParam(r.primaryKey, '$1')}`;
  const resolved: string[] = [];
  const session = await Session.open(ctx.knex);
  try {
    for (const k of keys) {
      try {
        const row = await session.transaction(() => session.one<{ derived: boolean }>(sql, [k]), {
          readOnly: true,
          searchPath: r.searchPath,
        });
        if (row === undefined || row.derived) resolved.push(k);
      } catch (error) {
        if (!isRowLevelError(error)) throw error;
      }
    }
  } finally {
    await session.release();
  }
  if (resolved.length > 0) {
    await ctx.knex.raw('DELETE FROM ??.underivable WHERE migration_id = ? AND key = ANY(?::jsonb[])', [
      ctx.stateSchema,
      id,
      resolved,
    ]);
  }
  return resolved.length;
}
