import { isPhaseflagError, type BackfillRowFailedError, type Phase } from '@phaseflag/core';
import type { BackfillOptions, MigrationHandle } from '../migration-handle.js';
import * as ops from '../operations.js';
import type { ResolvedMigration } from '../resolved.js';
import { assertDefinitionUnchanged } from './definition.js';
import { refuse, runTransition } from './transition.js';
import { clearResolvedUnderivable } from '../underivable/store.js';

export type BackfillRun = ops.BackfillResult & { phase: Phase };

export async function backfill(h: MigrationHandle, options: BackfillOptions): Promise<BackfillRun> {
  // Before any transition, range or batch: a declaration edited since the migration was recorded (after a crash,
  // say) would fill the rows left with another expression than the rows done and the trigger.
  await assertDefinitionUnchanged(h);
  await startBackfill(h, options);
  const r = await h.resolve();
  await ops.prepareBackfill(h.pf.ctx, r, { workers: options.batch?.workers ?? h.migration.batch.workers });
  return runResolved(h, r, options);
}

export async function runBackfill(h: MigrationHandle, options: BackfillOptions): Promise<BackfillRun> {
  await assertDefinitionUnchanged(h);
  return runResolved(h, await h.resolve(), options);
}

async function runResolved(h: MigrationHandle, r: ResolvedMigration, options: BackfillOptions): Promise<BackfillRun> {
  const { ctx, store } = h.pf;
  let result: ops.BackfillResult;
  try {
    result = await ops.runBackfill(ctx, r, options);
  } catch (error) {
    if (isPhaseflagError(error, 'PF_BACKFILL_ROW_FAILED')) await pauseOnFailedRow(h, error as BackfillRowFailedError, options);
    throw error;
  }
  // Rows recorded earlier that derive now (fixed since) leave the list, so status shows what still blocks.
  if (result.completed) await clearResolvedUnderivable(ctx, r);
  let row = (await store.get(h.id))!;
  if (result.completed && row.phase === 'backfilling') {
    await runTransition(h, 'complete-backfill', {}, { cause: options.cause, extra: { backfill_completed_at: ctx.knex.fn.now() } });
    row = (await store.get(h.id))!;
  }
  return { ...result, phase: row.phase };
}

export async function startBackfill(h: MigrationHandle, options: Pick<BackfillOptions, 'batch' | 'cause'>): Promise<void> {
  const row = await h.pf.store.get(h.id);
  if (row?.phase === 'dual-write' || row === null) {
    await runTransition(h, 'backfill', {}, {
      cause: options.cause,
      before: async (r) => {
        await ops.prepareBackfill(h.pf.ctx, r, { workers: options.batch?.workers ?? h.migration.batch.workers });
      },
      extra: { backfill_started_at: h.pf.ctx.knex.fn.now() },
    });
  } else if (row.phase === 'paused') {
    await h.resume({ cause: options.cause });
  } else if (row.phase !== 'backfilling') {
    await refuse(h, 'backfill', row.phase, `the backfill runs from dual-write, paused or backfilling, not from ${row.phase}`, 'Start dual-write first.');
  }
}

/**
 * A backfill stopped on a row it cannot derive has no runner any more: the phase must not stay 'backfilling'
 * (status would show a run making no progress). The failure is recorded as an event, and the migration moves to
 * 'paused' with the reason, so that status says what happened and a rerun of the backfill resumes it.
 */
async function pauseOnFailedRow(h: MigrationHandle, error: BackfillRowFailedError, options: BackfillOptions): Promise<void> {
  const { store } = h.pf;
  const value = error.value as { key: unknown[]; oldValue: string | null; error: string; sqlstate: string | null };
  const reason = `backfill stopped: row ${JSON.stringify(value.key)} (${JSON.stringify(value.oldValue)}) cannot be derived: ${value.error}`;
  const row = await store.get(h.id);
  await store.recordEvent({
    migration_id: h.id, kind: 'backfill', action: 'backfill-failed', from_phase: row?.phase ?? null, to_phase: null, reason,
    detail: { code: error.code, key: value.key, oldValue: value.oldValue, error: value.error, sqlstate: value.sqlstate, rowsUpdated: error.rowsUpdated, hint: error.hint },
  });
  if (row?.phase === 'backfilling') {
    await runTransition(h, 'pause', {}, { cause: options.cause, reason }).catch((e) => {
      h.pf.ctx.logger.warn(`phaseflag: ${h.id}: could not pause after the failed backfill: ${(e as Error).message}`, { migrationId: h.id });
    });
  }
}
