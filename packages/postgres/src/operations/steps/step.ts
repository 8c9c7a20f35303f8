import type { DdlSettings } from '@phaseflag/core';
import type { ExecutorContext } from '../../context.js';
import { runDdl, type DdlOutcome } from '../ddl.js';
import { maxDuration, maxLockWait, type LockMode, type PlannedStatement } from '../planned-statement.js';
import type { ResolvedMigration } from '../../catalog/resolved.js';
import { qualify } from '../../sql/text.js';

/** What planning needs from the executor: names only, no connection (a plan executes nothing). */
export interface PlanContext {
  readonly stateSchema: string;
}

export interface StepOptions {
  signal?: AbortSignal;
  /** Overrides the migration's own DDL settings (lock_timeout, attempts, back-off). */
  ddl?: DdlSettings;
}

/**
 * One DDL step, pgroll style: `plan` gives every statement the step may run with the lock it takes; `apply`
 * inspects the live catalog and runs only what is missing, so it is idempotent (a second run takes no lock) and
 * resumable (after a failure half-way, the next run finishes the job); `rollback` undoes it the same way.
 */
export interface Step {
  readonly name: string;
  plan(r: ResolvedMigration, ctx: PlanContext): PlannedStatement[];
  /** The statements `rollback` may run (for the plan's rollback section). */
  planRollback(r: ResolvedMigration, ctx: PlanContext): PlannedStatement[];
  apply(ctx: ExecutorContext, r: ResolvedMigration, opts?: StepOptions): Promise<void>;
  rollback(ctx: ExecutorContext, r: ResolvedMigration, opts?: StepOptions): Promise<void>;
}

export function tableSql(r: ResolvedMigration): string {
  return qualify(r.schema, r.table);
}

/** A statement on the migration's table, with its worst-case lock wait computed from the migration's settings. */
export function onTable(
  r: ResolvedMigration,
  step: string,
  lock: LockMode,
  sql: string,
  description: string,
  transactional = true,
): PlannedStatement {
  return {
    step,
    sql,
    lock,
    transactional,
    description,
    maxLockWaitMs: maxLockWait(lock, r.migration.ddl),
    maxDurationMs: maxDuration(lock, r.migration.ddl),
    ...(lock === 'NONE' ? {} : { table: { schema: r.schema, name: r.table } }),
  };
}

export function run(
  ctx: ExecutorContext,
  r: ResolvedMigration,
  stmt: PlannedStatement,
  opts: StepOptions = {},
): Promise<DdlOutcome> {
  return runDdl(ctx, stmt, { migrationId: r.migration.id, ddl: opts.ddl ?? r.migration.ddl, signal: opts.signal });
}
