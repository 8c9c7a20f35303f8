/**
 * The engine's view of the executor: one function per thing a transition does to the database. Keeps handle/
 * about phases and guards, and the step, backfill and verify modules about SQL.
 */
import type { Migration } from '@phaseflag/core';
import type { ExecutorContext } from './context.js';
import type { ResolvedMigration } from './resolved.js';
import { applySteps, contractStepsAfter, contractStepsBefore, dualWriteSteps, expandSteps, rollbackSteps, syncTriggerRemoval } from './steps/expand.js';
import { syncTriggerInstalled } from './steps/sync-trigger.js';
import { planMigration, type MigrationPlan, type PlanOptions } from './plan.js';
import { backfillProgress, prepareBackfill as prepare, resetBackfill, runBackfill as run, type BackfillOptions, type BackfillPlanInfo, type BackfillProgress, type BackfillResult } from './backfill/index.js';
import { verifyMigration, type VerifyOptions, type VerifyResult } from './verify.js';

export type { MigrationPlan, BackfillProgress, BackfillResult, VerifyResult, BackfillPlanInfo };

export function plan(ctx: ExecutorContext, migration: Migration, options?: PlanOptions): Promise<MigrationPlan> {
  return planMigration(ctx, migration, options);
}

export function expand(ctx: ExecutorContext, r: ResolvedMigration, signal?: AbortSignal): Promise<void> {
  return applySteps(ctx, r, expandSteps(r), { signal });
}

export function installSync(ctx: ExecutorContext, r: ResolvedMigration): Promise<void> {
  return applySteps(ctx, r, dualWriteSteps(r));
}

export function dropSync(ctx: ExecutorContext, r: ResolvedMigration): Promise<void> {
  return applySteps(ctx, r, [syncTriggerRemoval]);
}

export function syncInstalled(ctx: ExecutorContext, r: ResolvedMigration): Promise<boolean> {
  return syncTriggerInstalled(ctx, r);
}

export function contractBefore(ctx: ExecutorContext, r: ResolvedMigration, signal?: AbortSignal): Promise<void> {
  return applySteps(ctx, r, contractStepsBefore(r), { signal });
}

export function contractAfter(ctx: ExecutorContext, r: ResolvedMigration, options: { dropOldColumn: boolean; signal?: AbortSignal }): Promise<void> {
  return applySteps(ctx, r, contractStepsAfter(r, { dropOldColumn: options.dropOldColumn }), { signal: options.signal });
}

export async function rollback(ctx: ExecutorContext, r: ResolvedMigration, options: { dropNewColumn: boolean; signal?: AbortSignal }): Promise<void> {
  await applySteps(ctx, r, rollbackSteps(r, { dropNewColumn: options.dropNewColumn }), { signal: options.signal });
  await resetBackfill(ctx, r.migration.id);
}

export function prepareBackfill(ctx: ExecutorContext, r: ResolvedMigration, options: { workers?: number }): Promise<BackfillPlanInfo> {
  return prepare(ctx, r, options);
}

export function runBackfill(ctx: ExecutorContext, r: ResolvedMigration, options: BackfillOptions): Promise<BackfillResult> {
  return run(ctx, r, options);
}

export function progress(ctx: ExecutorContext, migrationId: string): Promise<BackfillProgress> {
  return backfillProgress(ctx, migrationId);
}

export function verify(ctx: ExecutorContext, r: ResolvedMigration, options: VerifyOptions): Promise<VerifyResult> {
  return verifyMigration(ctx, r, options);
}
