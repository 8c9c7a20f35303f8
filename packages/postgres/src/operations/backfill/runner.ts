import type { Context, Span } from '@opentelemetry/api';
import {
  ATTR,
  BackfillRowFailedError,
  SPAN,
  StateError,
  ValidationError,
  migrationSchema,
  type BatchSettings,
  type ThrottleSettings,
} from '@phaseflag/core';
import type { ExecutorContext } from '../../context.js';
import { withSpan } from '../../telemetry/with-span.js';
import type { ResolvedMigration } from '../../catalog/resolved.js';
import { backfillLockKey, lockedError, takeOver } from './holder.js';
import { poolMax as poolSize } from '../../driver/connection.js';
import { assertSessionConnection } from '../../driver/pooler.js';
import { LiveKnobs } from './knobs.js';
import { buildProgress } from './progress.js';
import { prepareBackfill } from './ranges.js';
import { SpaceReclaimer } from './reclaim.js';
import { IndexRebuilder } from './reindex.js';
import { Session } from '../../driver/session.js';
import {
  markAllRangesDone,
  markBackfillCompleted,
  markBackfillStarted,
  readMigrationRow,
  readRanges,
  type StoredRange,
} from './state.js';
import { buildBatchStatements } from './statements.js';
import { Throttler } from './throttle.js';
import { ApplicationWatch } from './application-watch.js';
import { probeThrottleQuery } from '../../catalog/throttle-query.js';
import { inRolledBackTransaction } from '../../catalog/probe-site.js';
import type { BackfillRunOptions, BackfillResult, BackfillStop } from './types.js';
import {
  BACKFILL_ATTR,
  backfillInstruments,
  type RangeState,
  type RunnerFence,
  type RunShared,
  type WorkerEnd,
} from './run-shared.js';
import { triggerBypassFor } from './trigger-bypass.js';
import { runWorkerPool } from './worker-pool.js';

/**
 * Runs (or resumes) the backfill of one migration until every range is done, the phase leaves 'backfilling'
 * (pause, rollback), or the caller aborts. Safe to kill at any moment: each batch commits together with its
 * checkpoint, and the next run starts after the last committed one. One attempt: see resume.ts for the runs
 * that reconnect after a lost connection.
 */
export async function runBackfillOnce(
  ctx: ExecutorContext,
  r: ResolvedMigration,
  opts: BackfillRunOptions = {},
): Promise<BackfillResult> {
  const id = r.migration.id;
  const batch = parseSettings('batch', { ...r.migration.batch, ...opts.batch }, id) as BatchSettings;
  const throttle = parseSettings('throttle', { ...r.migration.throttle, ...opts.throttle }, id) as ThrottleSettings;
  const started = ctx.clock.now();
  // Not made the active span: its batches and VACUUMs are parented on it explicitly.
  return withSpan(
    ctx.tracer,
    SPAN.backfill,
    {
      attributes: { [ATTR.migrationId]: id, [ATTR.table]: `${r.schema}.${r.table}`, [ATTR.dbSystem]: 'postgresql' },
    },
    async (span, parent) => {
      // The runner lock, the knobs' LISTEN and the throttle session live in sessions a transaction pooler drops.
      await assertSessionConnection(ctx.knex, `run the backfill of "${id}"`);
      // The throttle query (declared or given for this run) is judged by Postgres before anything runs.
      if (throttle.query !== null)
        await inRolledBackTransaction(ctx.knex, (trx) => probeThrottleQuery(trx, throttle.query!, id));
      const lockKey = backfillLockKey(ctx.stateSchema, id);
      // Outside the pool: a pool of one still has its connection for the worker.
      const lock = await Session.openDedicated(ctx.knex);
      let locked = false;
      try {
        locked = await lock.tryAdvisoryLock(lockKey);
        if (!locked) throw await lockedError(ctx, id);
        const fence = await takeOver(lock, ctx.stateSchema, id, lockKey);
        const result = await runLocked(ctx, r, opts, batch, throttle, lock, fence, parent, span);
        const final = { ...result, durationMs: ctx.clock.now() - started };
        span.setAttributes({
          [BACKFILL_ATTR.workers]: final.workers,
          [ATTR.rows]: final.rowsScanned,
          [BACKFILL_ATTR.rowsUpdated]: final.rowsUpdated,
          [BACKFILL_ATTR.batches]: final.batches,
          [BACKFILL_ATTR.stoppedBy]: final.stoppedBy,
          [ATTR.throttledMs]: final.throttledMs,
        });
        ctx.logger.info(`backfill of ${id} stopped: ${final.stoppedBy}`, { migrationId: id, ...final });
        return final;
      } finally {
        if (locked) await lock.advisoryUnlock(lockKey);
        await lock.release();
      }
    },
    { activate: false },
  );
}

async function runLocked(
  ctx: ExecutorContext,
  r: ResolvedMigration,
  opts: BackfillRunOptions,
  batch: BatchSettings,
  throttle: ThrottleSettings,
  lock: Session,
  fence: RunnerFence,
  parent: Context,
  span: Span,
): Promise<Omit<BackfillResult, 'durationMs'>> {
  const id = r.migration.id;
  const s = ctx.stateSchema;
  const row = await readMigrationRow(ctx.knex, s, id);
  if (!row) {
    throw new StateError('PF_UNKNOWN_MIGRATION', `Migration "${id}" is not recorded in ${s}.migrations.`, {
      value: id,
      migrationId: id,
      hint: 'Plan and expand the migration with the engine first; the backfill runs in the backfilling phase.',
    });
  }
  const totals = { rowsUpdated: 0, rowsScanned: 0, batches: 0, throttledMs: 0, batchesWithoutTriggers: 0 };
  const empty = (stoppedBy: BackfillStop, completed: boolean, workers = 0) => ({
    completed,
    stoppedBy,
    ...totals,
    workers,
    vacuums: 0,
    vacuumMs: 0,
    reindexes: 0,
    reindexMs: 0,
  });
  if (row.phase !== 'backfilling') {
    // Paused, rolled back, or already past the backfill: touch nothing (not even the ranges, which a rollback
    // may just have deleted).
    const existing = await readRanges(ctx.knex, s, id);
    const completed = existing.length > 0 && existing.every((x) => x.done);
    return empty(completed ? 'complete' : 'phase-changed', completed);
  }
  const plan = await prepareBackfill(ctx, r, { workers: batch.workers });
  await markBackfillStarted(ctx.knex, s, id);
  if (r.migration.backfill === null) {
    // A brand-new column with no expression: nothing to compute (a constant default was filled by ADD COLUMN).
    await markAllRangesDone(ctx.knex, s, id);
    await markBackfillCompleted(ctx.knex, s, id);
    return empty('complete', true);
  }

  const ranges = await readRanges(ctx.knex, s, id);
  const queue: StoredRange[] = ranges.filter((x) => !x.done);
  const poolMax = poolSize(ctx.knex);
  // One pooled connection per worker (the lock has its own); more workers than the pool can serve would wait on
  // each other for connections instead of working.
  const workers = Math.max(0, Math.min(batch.workers, queue.length, poolMax));
  span.setAttribute(BACKFILL_ATTR.workers, workers);
  // The VACUUMs get a connection of their own when the pool has one to spare beyond the workers;
  // otherwise none run (sharing the lock's connection would hold up throttle checks behind a VACUUM).
  const reclaimSettings = { enabled: opts.reclaim?.enabled ?? true, everyRows: opts.reclaim?.everyRows };
  const reclaimSession =
    reclaimSettings.enabled && workers > 0 && poolMax - workers >= 1 ? await Session.open(ctx.knex) : null;
  const reclaimer = new SpaceReclaimer(ctx, r, reclaimSession, reclaimSettings, plan.rowsEstimate, parent);
  const rebuilder = new IndexRebuilder(ctx, r, parent, opts.signal);
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  if (opts.signal?.aborted) stop.abort();

  const states = new Map<number, RangeState>(
    ranges.map((x) => [
      x.worker,
      {
        checkpointText: x.checkpointText,
        checkpoint: x.checkpoint,
        rowsDone: x.rowsDone,
        batches: x.batches,
        done: x.done,
      },
    ]),
  );
  const runStarted = ctx.clock.now();
  const next = { batchSize: batch.size };
  const report = () =>
    opts.onProgress?.(
      buildProgress(id, plan.rowsEstimate, ranges, states, {
        rowsThisRun: totals.rowsScanned,
        elapsedMs: ctx.clock.now() - runStarted,
        throttled: throttler.isThrottled || watch.holding,
        batchSize: knobs.current.batchSize ?? next.batchSize,
        knobs: knobs.current,
      }),
    );
  const knobs = new LiveKnobs(lock, s, id, (k) => {
    span.addEvent('knobs.change', { 'phaseflag.backfill.knobs': JSON.stringify(k) });
    ctx.logger.info(`backfill of ${id}: knobs now ${JSON.stringify(k)}`, { migrationId: id, ...k });
    report();
  });
  const throttler = new Throttler(
    lock,
    throttle,
    ctx.clock,
    ctx.logger,
    id,
    (throttled, reason) => {
      span.addEvent(throttled ? 'throttle.start' : 'throttle.end', reason === null ? {} : { [ATTR.reason]: reason });
      report();
    },
    knobs,
    ctx.knex,
  );
  const watch = new ApplicationWatch(ctx, id, throttle, batch, () => next.batchSize, span);
  watch.addOwn(lock.pid, reclaimSession?.pid ?? null);
  const triggerBypass = await triggerBypassFor(lock, r, opts.skipOwnTrigger);
  span.setAttribute('phaseflag.backfill.trigger_bypass', triggerBypass !== null);
  const shared: RunShared = {
    ctx,
    migrationId: id,
    resolved: r,
    statements: buildBatchStatements(r, s, r.migration.backfill),
    batch,
    lockTimeoutMs: r.migration.ddl.lockTimeoutMs,
    searchPath: r.searchPath,
    throttler,
    watch,
    reclaimer,
    triggerBypass,
    stop: stop.signal,
    fence,
    shouldContinue: opts.shouldContinue,
    parent,
    knobs,
    next,
    instruments: backfillInstruments(ctx.meter),
    totals,
    onBatch: (worker, state) => {
      states.set(worker, { ...state });
      report();
    },
  };

  ctx.logger.info(`backfill of ${id} running`, { migrationId: id, workers, ranges: queue.length, split: plan.split });
  let ends: readonly WorkerEnd[] = [];
  let completed = false;
  try {
    await knobs.start();
    await watch.start();
    let failure: unknown;
    try {
      ({ ends, failure } = await runWorkerPool(shared, queue, workers, stop));
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
    }
    if (failure !== undefined) {
      if (failure instanceof BackfillRowFailedError) {
        failure.rowsUpdated = totals.rowsUpdated;
        if (typeof failure.value === 'object' && failure.value !== null)
          Object.assign(failure.value, { rowsUpdated: totals.rowsUpdated });
      }
      throw failure as Error;
    }
    completed = await markBackfillCompleted(ctx.knex, s, id);
    await reclaimer.finish(completed);
    // After the last VACUUM, before the phase moves on: see reindex.ts. Its failures are warnings.
    if (completed && opts.reindex?.enabled !== false) await rebuilder.run();
  } finally {
    await reclaimer.finish(false);
    await reclaimSession?.release();
    await knobs.stop();
    await throttler.close();
    await watch.stop();
  }
  const stoppedBy: BackfillStop = completed ? 'complete' : ends.includes('phase-changed') ? 'phase-changed' : 'aborted';
  span.setAttributes({
    [BACKFILL_ATTR.vacuums]: reclaimer.totals.vacuums,
    [BACKFILL_ATTR.vacuumMs]: reclaimer.totals.vacuumMs,
    [BACKFILL_ATTR.batchesWithoutTriggers]: totals.batchesWithoutTriggers,
    [BACKFILL_ATTR.reindexes]: rebuilder.totals.reindexes,
    [BACKFILL_ATTR.reindexMs]: rebuilder.totals.reindexMs,
  });
  return { completed, stoppedBy, ...totals, workers, ...reclaimer.totals, ...rebuilder.totals };
}

export function parseSettings(which: 'batch' | 'throttle', value: unknown, id: string): unknown {
  const parsed = migrationSchema.shape[which].safeParse(value);
  if (parsed.success) return parsed.data;
  throw new ValidationError(
    'PF_INVALID_OPTIONS',
    `Invalid ${which} settings for the backfill of "${id}": ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}.`,
    {
      value,
      migrationId: id,
      hint: `See the "${which}" fields of the migration declaration; the same limits apply to the run options.`,
    },
  );
}
