/**
 * What the fault tests check after the dust settles: the new column against the expression, and the state store
 * against itself and the table (phase, rows_backfilled, the checkpoint, nobody left holding a lock).
 */
import assert from 'node:assert/strict';
import type { Knex } from 'knex';
import { waitFor } from '@phaseflag/testkit';

export interface StoreFacts {
  phase: string;
  rowsBackfilled: number;
  /** Sum of the ranges' rows_done: counted in the same statement as rows_backfilled. */
  rangeRows: number;
  /** The bound of the backfill (the highest id it covers). */
  upper: number;
  /** Rows of the table within the bound now. */
  rowsInRange: number;
  rangesDone: boolean;
  /** Every range's checkpoint lies within its bounds. */
  checkpointsInRange: boolean;
}

export async function storeFacts(knex: Knex, stateSchema: string, id: string, table: string): Promise<StoreFacts> {
  const m = (await knex.raw('SELECT phase, rows_backfilled FROM ??.migrations WHERE id = ?', [stateSchema, id]))
    .rows[0] as { phase: string; rows_backfilled: string };
  const r = (
    await knex.raw(
      `SELECT coalesce(sum(rows_done), 0)::bigint AS rows, coalesce(max((upper_key->>0)::bigint), 0) AS upper,
              coalesce(bool_and(done), false) AS done,
              coalesce(bool_and(checkpoint IS NULL OR ((checkpoint->>0)::bigint <= (upper_key->>0)::bigint
                 AND (lower_key IS NULL OR (checkpoint->>0)::bigint > (lower_key->>0)::bigint))), true) AS coherent
         FROM ??.backfill_ranges WHERE migration_id = ?`,
      [stateSchema, id],
    )
  ).rows[0] as { rows: string; upper: string; done: boolean; coherent: boolean };
  const upper = Number(r.upper);
  const n = (await knex.raw('SELECT count(*)::bigint AS n FROM ?? WHERE id <= ?', [table, upper])).rows[0] as {
    n: string;
  };
  return {
    phase: m.phase,
    rowsBackfilled: Number(m.rows_backfilled),
    rangeRows: Number(r.rows),
    upper,
    rowsInRange: Number(n.n),
    rangesDone: r.done,
    checkpointsInRange: r.coherent,
  };
}

/**
 * A finished backfill's books: every range done with its checkpoint in bounds, rows_backfilled equal to the ranges'
 * rows, and each row counted at most once: no fewer than the rows in the range now (each was scanned), no more
 * than ids the range ever held. With `exact` (no deletes ran) it must equal the rows in the range.
 */
export function assertCoherent(f: StoreFacts, phase: string, exact = false): void {
  assert.equal(f.phase, phase);
  assert.ok(f.rangesDone, 'every range of the backfill is done');
  assert.ok(f.checkpointsInRange, 'every checkpoint lies within its range');
  assert.equal(f.rowsBackfilled, f.rangeRows, 'rows_backfilled equals the ranges’ rows_done');
  assert.ok(f.rowsBackfilled >= f.rowsInRange, `rows_backfilled ${f.rowsBackfilled} < ${f.rowsInRange} rows in range`);
  assert.ok(f.rowsBackfilled <= f.upper, `rows_backfilled ${f.rowsBackfilled} counts rows twice (ids ≤ ${f.upper})`);
  if (exact) assert.equal(f.rowsBackfilled, f.rowsInRange, 'each row counted exactly once');
}

/** Rows whose `amount` is not the derivation of `amount_cents` (NULL included). */
export async function wrongRows(knex: Knex, table: string): Promise<number> {
  const r = await knex.raw(
    'SELECT count(*)::int AS n FROM ?? WHERE amount IS DISTINCT FROM (amount_cents::numeric / 100)::numeric(12,2)',
    [table],
  );
  return (r.rows[0] as { n: number }).n;
}

/**
 * Waits until no backend whose application_name starts with one of `prefixes` holds an advisory lock (a killed
 * process's session may take a moment to end), and fails when one still does: an orphan lock.
 */
export async function assertNoOrphanLocks(knex: Knex, prefixes: string[], timeoutMs = 15_000): Promise<void> {
  const held = async () =>
    (
      await knex.raw(
        `SELECT a.pid, a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
          WHERE l.locktype = 'advisory' AND l.granted AND a.application_name LIKE ANY(?::text[])`,
        [prefixes.map((p) => `${p.replace(/[%_\\]/g, '\\$&')}%`)],
      )
    ).rows as { pid: number; application_name: string }[];
  await waitFor(async () => (await held()).length === 0, {
    timeoutMs,
    description: `no advisory lock held by ${prefixes.join(', ')}`,
  });
}

/** Each transition action of the migration's event log, with how often it was recorded. */
export async function transitionCounts(knex: Knex, stateSchema: string, id: string): Promise<Record<string, number>> {
  const rows = (
    await knex.raw(
      `SELECT action, count(*)::int AS n FROM ??.events WHERE migration_id = ? AND kind = 'transition' GROUP BY action`,
      [stateSchema, id],
    )
  ).rows as { action: string; n: number }[];
  return Object.fromEntries(rows.map((r) => [r.action, r.n]));
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A random whole number in [lo, hi]. */
export const between = (lo: number, hi: number): number => lo + Math.floor(Math.random() * (hi - lo + 1));
