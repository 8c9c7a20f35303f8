import type { ExecutorContext } from '../../context.js';
import type { ResolvedMigration } from '../../catalog/resolved.js';
import { addCheck } from './add-check.js';
import { addForeignKey } from './add-foreign-key.js';
import { addColumn } from './add-column.js';
import { carryDefault } from './carry-default.js';
import { createIndex } from './create-index.js';
import { dropNewColumn, dropOldColumn } from './drop-column.js';
import { dropNotNull } from './drop-not-null.js';
import { setNotNull } from './set-not-null.js';
import type { Step, StepOptions } from './step.js';
import { syncTrigger, syncTriggerApplies } from './sync-trigger.js';

/**
 * The order of steps in each phase. Each list is applied front to back; since every step's apply is idempotent,
 * a failed run is resumed by applying the same list again.
 */

/** Expand: the column first, then the index and the check on it. */
export function expandSteps(r: ResolvedMigration): Step[] {
  return [
    addColumn,
    ...(r.migration.newColumn.index ? [createIndex] : []),
    ...(r.migration.newColumn.check ? [addCheck] : []),
  ];
}

/** Dual-write: the sync trigger, when the migration uses it and has an expression to sync with. */
export function dualWriteSteps(r: ResolvedMigration): Step[] {
  return syncTriggerApplies(r) ? [syncTrigger] : [];
}

/**
 * Verify: the new column's foreign key, once the walk found every row's parent (see add-foreign-key.ts), so the
 * migration is verified only with the constraint validated.
 */
export function verifySteps(r: ResolvedMigration): Step[] {
  return r.references ? [addForeignKey] : [];
}

/**
 * Contract, in two parts around the phase change.
 * - before: the old column loses NOT NULL while every writer still fills it, so that writers which stop writing
 *   it after the phase change cannot fail;
 * - after (once every instance has moved): NOT NULL on the new column while the trigger still fills it for
 *   unaware inserts, then the trigger goes (it names the old column) — together with the old column's
 *   default carried over to the new one (see carry-default.ts) — then the old column if asked. A derived column keeps its trigger.
 */
export function contractStepsBefore(r: ResolvedMigration, options: { dropOldColumn?: boolean } = {}): Step[] {
  // Even when the old column is dropped later: between the phase change and the drop (the grace period),
  // writers that no longer fill it must not fail on its NOT NULL.
  void options;
  // A derived column's source is not replaced: its writers go on filling it, and it keeps its constraints.
  return r.oldColumn?.notNull && r.migration.intent !== 'derive' ? [dropNotNull] : [];
}

export function contractStepsAfter(r: ResolvedMigration, options: { dropOldColumn?: boolean } = {}): Step[] {
  const notNull = r.migration.newColumn.nullable ? [] : [setNotNull];
  // A derived column lives beside its source: the trigger keeps deriving it on every later write (they would
  // drift apart without it), and the source stays (the engine refuses dropOldColumn before getting here).
  if (r.migration.intent === 'derive') return notNull;
  return [
    ...notNull,
    carryDefault,
    syncTriggerRemoval,
    ...(options.dropOldColumn && r.oldColumn !== null ? [dropOldColumn] : []),
  ];
}

/**
 * Rollback: the trigger first (its function names the new column), then what expand built; the column itself
 * only when the engine says this migration created it. Dropping the column would take its index and check with
 * it, but a column made by hand stays and so must be cleaned of our objects one by one.
 */
export function rollbackSteps(r: ResolvedMigration, options: { dropNewColumn?: boolean } = {}): Step[] {
  return [
    syncTriggerRemoval,
    ...(r.references ? [inverse(addForeignKey)] : []),
    ...(r.migration.newColumn.index ? [inverse(createIndex)] : []),
    ...(r.migration.newColumn.check ? [inverse(addCheck)] : []),
    ...(options.dropNewColumn ? [dropNewColumn] : []),
  ];
}

/** A step that undoes another: its apply is the other's rollback, and the other way round. */
export function inverse(step: Step): Step {
  return {
    name: `undo-${step.name}`,
    plan: (r, ctx) => step.planRollback(r, ctx),
    planRollback: (r, ctx) => step.plan(r, ctx),
    apply: (ctx, r, opts) => step.rollback(ctx, r, opts),
    rollback: (ctx, r, opts) => step.apply(ctx, r, opts),
  };
}

/** Removal of the trigger and its function, as a step of its own (contract and rollback). */
export const syncTriggerRemoval: Step = inverse(syncTrigger);

export async function applySteps(
  ctx: ExecutorContext,
  r: ResolvedMigration,
  steps: readonly Step[],
  opts?: StepOptions,
): Promise<void> {
  for (const step of steps) await step.apply(ctx, r, opts);
}

// ---- each phase's schema change, as the transitions run it ------------------------------------------------------

export function applyExpand(ctx: ExecutorContext, r: ResolvedMigration, signal?: AbortSignal): Promise<void> {
  return applySteps(ctx, r, expandSteps(r), { signal });
}

export function applyVerifySteps(ctx: ExecutorContext, r: ResolvedMigration, signal?: AbortSignal): Promise<void> {
  return applySteps(ctx, r, verifySteps(r), { signal });
}

export function installSync(ctx: ExecutorContext, r: ResolvedMigration): Promise<void> {
  return applySteps(ctx, r, dualWriteSteps(r));
}

export function dropSync(ctx: ExecutorContext, r: ResolvedMigration): Promise<void> {
  return applySteps(ctx, r, [syncTriggerRemoval]);
}

export function applyContractBefore(ctx: ExecutorContext, r: ResolvedMigration, signal?: AbortSignal): Promise<void> {
  return applySteps(ctx, r, contractStepsBefore(r), { signal });
}

export function applyContractAfter(
  ctx: ExecutorContext,
  r: ResolvedMigration,
  options: { dropOldColumn: boolean; signal?: AbortSignal },
): Promise<void> {
  return applySteps(ctx, r, contractStepsAfter(r, { dropOldColumn: options.dropOldColumn }), {
    signal: options.signal,
  });
}

/** Rollback's schema change: the trigger, the index and check, and the new column when this migration made it. */
export function applyRollback(
  ctx: ExecutorContext,
  r: ResolvedMigration,
  options: { dropNewColumn: boolean; signal?: AbortSignal },
): Promise<void> {
  return applySteps(ctx, r, rollbackSteps(r, { dropNewColumn: options.dropNewColumn }), { signal: options.signal });
}
