import { isPhaseflagError, type BackfillRowFailedError } from '@phaseflag/core';
import { resolveScope, type MigrationScope } from './scope.js';
import type { BackfillOptions, BackfillRun } from '../types.js';
import type { ResolvedMigration } from '../catalog/resolved.js';
import { assertDefinitionUnchanged } from './definition.js';
import { resume } from './pause.js';
import { refuse, runTransition } from './run.js';
import { clearResolvedUnderivable } from '../operations/underivable/store.js';
import { prepareBackfill } from '../operations/backfill/ranges.js';
import { checkBackfillOptions, runBackfill as executeBackfill } from '../operations/backfill/resume.js';
import type { BackfillResult } from '../operations/backfill/types.js';

export async function backfill(scope: MigrationScope, options: BackfillOptions): Promise<BackfillRun> {
  // Before any transition, range or batch: a declaration edited since the migration was recorded (after a crash,
  // say) would fill the rows left with another expression than the rows done and the trigger.
  await assertDefinitionUnchanged(scope);
  checkBackfillOptions(scope.migration, options);
  await startBackfill(scope, options);
  const r = await resolveScope(scope);
  await prepareBackfill(scope.ctx, r, { workers: options.batch?.workers ?? scope.migration.batch.workers });
  return runResolved(scope, r, options);
}

export async function runBackfill(scope: MigrationScope, options: BackfillOptions): Promise<BackfillRun> {
  await assertDefinitionUnchanged(scope);
  return runResolved(scope, await resolveScope(scope), options);
}

async function runResolved(
  scope: MigrationScope,
  r: ResolvedMigration,
  options: BackfillOptions,
): Promise<BackfillRun> {
  const { ctx, store } = scope;
  let result: BackfillResult;
  try {
    result = await executeBackfill(ctx, r, options);
  } catch (error) {
    if (isPhaseflagError(error, 'PF_BACKFILL_ROW_FAILED'))
      await pauseOnFailedRow(scope, error as BackfillRowFailedError, options);
    throw error;
  }
  // Rows recorded earlier that derive now (fixed since) leave the list, so status shows what still blocks.
  if (result.completed) await clearResolvedUnderivable(ctx, r);
  let row = (await store.get(scope.id))!;
  if (result.completed && row.phase === 'backfilling') {
    await runTransition(
      scope,
      'complete-backfill',
      {},
      { cause: options.cause, extra: { backfill_completed_at: ctx.knex.fn.now() } },
    );
    row = (await store.get(scope.id))!;
  }
  return { ...result, phase: row.phase };
}

export async function startBackfill(
  scope: MigrationScope,
  options: Pick<BackfillOptions, 'batch' | 'cause'>,
): Promise<void> {
  checkBackfillOptions(scope.migration, options);
  const row = await scope.store.get(scope.id);
  if (row?.phase === 'dual-write' || row === null) {
    await runTransition(
      scope,
      'backfill',
      {},
      {
        cause: options.cause,
        before: async (r) => {
          await prepareBackfill(scope.ctx, r, { workers: options.batch?.workers ?? scope.migration.batch.workers });
        },
        extra: { backfill_started_at: scope.ctx.knex.fn.now() },
      },
    );
  } else if (row.phase === 'paused') {
    await resume(scope, { cause: options.cause });
  } else if (row.phase !== 'backfilling') {
    await refuse(
      scope,
      'backfill',
      row.phase,
      `the backfill runs from dual-write, paused or backfilling, not from ${row.phase}`,
      'Start dual-write first.',
    );
  }
}

/**
 * A backfill stopped on a row it cannot derive has no runner any more: the phase must not stay 'backfilling'
 * (status would show a run making no progress). The failure is recorded as an event, and the migration moves to
 * 'paused' with the reason, so that status says what happened and a rerun of the backfill resumes it.
 */
async function pauseOnFailedRow(
  scope: MigrationScope,
  error: BackfillRowFailedError,
  options: BackfillOptions,
): Promise<void> {
  const { store } = scope;
  const value = error.value as { key: unknown[]; oldValue: string | null; error: string; sqlstate: string | null };
  const reason = `backfill stopped: row ${JSON.stringify(value.key)} (${JSON.stringify(value.oldValue)}) cannot be derived: ${value.error}`;
  const row = await store.get(scope.id);
  await store.recordEvent({
    migration_id: scope.id,
    kind: 'backfill',
    action: 'backfill-failed',
    from_phase: row?.phase ?? null,
    to_phase: null,
    reason,
    detail: {
      code: error.code,
      key: value.key,
      oldValue: value.oldValue,
      error: value.error,
      sqlstate: value.sqlstate,
      rowsUpdated: error.rowsUpdated,
      hint: error.hint,
    },
  });
  if (row?.phase === 'backfilling') {
    await runTransition(scope, 'pause', {}, { cause: options.cause, reason }).catch((e) => {
      scope.ctx.logger.warn(
        `phaseflag: ${scope.id}: could not pause after the failed backfill: ${(e as Error).message}`,
        { migrationId: scope.id },
      );
    });
  }
}
