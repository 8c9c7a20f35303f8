import { StateError } from '@phaseflag/core';
import type { ExecutorContext } from '../../context.js';
import type { BackfillKnobs } from './knobs.js';
import { readMigrationRow, readRanges, type StoredRange } from './state.js';
import type { BackfillProgress, BackfillRange } from './types.js';
import type { RangeState } from './run-shared.js';

/** Progress for status displays, from the state store alone (works while another process runs the backfill). */
export async function backfillProgress(ctx: ExecutorContext, migrationId: string): Promise<BackfillProgress> {
  const row = await readMigrationRow(ctx.knex, ctx.stateSchema, migrationId);
  if (!row) {
    throw new StateError(
      'PF_UNKNOWN_MIGRATION',
      `Migration "${migrationId}" is not recorded in ${ctx.stateSchema}.migrations.`,
      {
        value: migrationId,
        migrationId,
        hint: 'Check the migration id (phaseflag status lists them).',
      },
    );
  }
  const ranges = (await readRanges(ctx.knex, ctx.stateSchema, migrationId)).map(publicRange);
  const rowsDone = ranges.reduce((n, x) => n + x.rowsDone, 0);
  const done = ranges.length > 0 && ranges.every((x) => x.done);
  const rowsEstimate = Math.max(row.rowsEstimate ?? 0, done ? rowsDone : 0);
  // The store keeps no per-run timings, so the rate is an average since the backfill started, pauses included;
  // a running runner's onProgress gives the live rate.
  const last = (
    await ctx.knex.raw('SELECT max(updated_at) AS at FROM ??.backfill_ranges WHERE migration_id = ?', [
      ctx.stateSchema,
      migrationId,
    ])
  ).rows[0]?.at as Date | null;
  const seconds = row.backfillStartedAt && last ? (last.getTime() - row.backfillStartedAt.getTime()) / 1000 : 0;
  return withRate({ migrationId, rowsDone, rowsEstimate, ranges, done }, seconds > 0 ? rowsDone / seconds : undefined);
}

/** Progress as a running runner knows it, without a query per batch. */
export function buildProgress(
  migrationId: string,
  rowsEstimate: number,
  ranges: readonly StoredRange[],
  states: ReadonlyMap<number, RangeState>,
  run: { rowsThisRun: number; elapsedMs: number; throttled: boolean; batchSize?: number; knobs?: BackfillKnobs },
): BackfillProgress {
  const current = ranges.map((x) => {
    const s = states.get(x.worker);
    return s
      ? { ...publicRange(x), checkpoint: s.checkpoint, rowsDone: s.rowsDone, batches: s.batches, done: s.done }
      : publicRange(x);
  });
  const rowsDone = current.reduce((n, x) => n + x.rowsDone, 0);
  const done = current.every((x) => x.done);
  const rate = run.elapsedMs > 0 && run.rowsThisRun > 0 ? run.rowsThisRun / (run.elapsedMs / 1000) : undefined;
  return {
    ...withRate(
      { migrationId, rowsDone, rowsEstimate: Math.max(rowsEstimate, done ? rowsDone : 0), ranges: current, done },
      rate,
    ),
    throttled: run.throttled,
    ...(run.batchSize !== undefined ? { batchSize: run.batchSize } : {}),
    ...(run.knobs !== undefined ? { knobs: run.knobs } : {}),
  };
}

function withRate(
  p: Omit<BackfillProgress, 'rowsPerSecond' | 'etaSeconds'>,
  rate: number | undefined,
): BackfillProgress {
  if (rate === undefined || !Number.isFinite(rate) || rate <= 0) return p;
  const remaining = p.done ? 0 : Math.max(0, p.rowsEstimate - p.rowsDone);
  return { ...p, rowsPerSecond: Math.round(rate), etaSeconds: Math.round(remaining / rate) };
}

function publicRange(x: StoredRange | BackfillRange): BackfillRange {
  return {
    worker: x.worker,
    lowerKey: x.lowerKey,
    upperKey: x.upperKey,
    checkpoint: x.checkpoint,
    done: x.done,
    rowsDone: x.rowsDone,
    batches: x.batches,
  };
}
