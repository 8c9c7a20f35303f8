import type { Phase } from '@phaseflag/core';
import type { BackfillOptions, MigrationHandle } from '../migration-handle.js';
import * as ops from '../operations.js';
import type { ResolvedMigration } from '../resolved.js';
import { assertDefinitionUnchanged } from './definition.js';
import { refuse, runTransition } from './transition.js';

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
  const result = await ops.runBackfill(ctx, r, options);
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
