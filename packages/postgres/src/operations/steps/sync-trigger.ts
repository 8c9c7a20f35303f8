import { objectName, quoteIdent } from '@phaseflag/core';
import { readTrigger } from '../../catalog/state.js';
import type { ExecutorContext } from '../../context.js';
import type { PlannedStatement } from '../planned-statement.js';
import type { ResolvedMigration } from '../../catalog/resolved.js';
import { dollarTag, qualify } from '../../sql/text.js';
import { onTable, run, tableSql, type PlanContext, type Step } from './step.js';
import { syncFunctionBody } from './sync-function.js';

const NAME = 'sync-trigger';

/**
 * Dual-write in the database, for writers that do not embed phaseflag (psql, cron jobs, other services): a
 * BEFORE INSERT OR UPDATE row trigger keeps the two columns consistent, as pgroll's up/down triggers do. What it
 * does to each row is its function's body (sync-function.ts); this step installs the function and the trigger.
 *
 * Trigger order: Postgres fires the BEFORE triggers of a table in the byte order of their names (pgroll #352).
 * The name starts with "zz_" so that it fires after the table's own BEFORE triggers (any name sorting before
 * "zz_" — every name starting with a letter other than z, a digit or "_"): values those triggers set or
 * normalise are synced, not overwritten. A user trigger sorting after it that changes either column is seen by
 * verify.
 */
export function syncFunctionName(r: Pick<ResolvedMigration, 'migration'>): string {
  return objectName('pf_sync', r.migration.id);
}

export function syncTriggerName(r: Pick<ResolvedMigration, 'migration'>): string {
  return objectName('zz_pf_sync', r.migration.id);
}

/** Whether this migration needs a trigger at all: one of the two directions must be computable. */
export function syncTriggerApplies(r: ResolvedMigration): boolean {
  return (
    r.migration.sync.trigger &&
    (r.migration.backfill !== null || (r.migration.reverse !== null && r.oldColumn !== null))
  );
}

/**
 * The search_path the function runs under. An expression that uses only built-in objects means the same under
 * any path (pg_catalog is searched first), so the function leaves the writer's path alone: a SET clause costs a
 * GUC save and restore on every row. One that uses user functions, operators or types pins the path it was
 * validated under, so every writer resolves them alike.
 */
function pinnedSearchPath(r: ResolvedMigration): string | null {
  if (r.expressionDependencies !== undefined && r.expressionDependencies.length === 0) return null;
  return r.searchPath.length === 0 ? 'pg_catalog' : r.searchPath.map(quoteIdent).join(', ');
}

export function createFunctionStatement(r: ResolvedMigration, ctx: PlanContext): PlannedStatement {
  const body = syncFunctionBody(r, ctx.stateSchema);
  const tag = dollarTag(body, 'pf_sync');
  const pinned = pinnedSearchPath(r);
  return {
    step: NAME,
    lock: 'NONE',
    maxLockWaitMs: 0,
    maxDurationMs: 0,
    transactional: true,
    sql:
      `CREATE OR REPLACE FUNCTION ${qualify(ctx.stateSchema, syncFunctionName(r))}() RETURNS trigger LANGUAGE plpgsql\n` +
      `${pinned === null ? '' : `SET search_path TO ${pinned}\n`}AS ${tag}${body}${tag}`,
    description: `create or replace sync function "${syncFunctionName(r)}" in "${ctx.stateSchema}" (no table lock)`,
  };
}

export function createTriggerStatement(r: ResolvedMigration, ctx: PlanContext): PlannedStatement {
  const trigger = quoteIdent(syncTriggerName(r));
  return onTable(
    r,
    NAME,
    'ACCESS EXCLUSIVE',
    `DROP TRIGGER IF EXISTS ${trigger} ON ${tableSql(r)};\n` +
      `CREATE TRIGGER ${trigger} BEFORE INSERT OR UPDATE ON ${tableSql(r)} FOR EACH ROW EXECUTE FUNCTION ${qualify(ctx.stateSchema, syncFunctionName(r))}()`,
    `(re)create BEFORE INSERT OR UPDATE trigger "${syncTriggerName(r)}" in one transaction (catalog only)`,
  );
}

export function dropTriggerStatement(r: ResolvedMigration): PlannedStatement {
  return onTable(
    r,
    NAME,
    'ACCESS EXCLUSIVE',
    `DROP TRIGGER IF EXISTS ${quoteIdent(syncTriggerName(r))} ON ${tableSql(r)}`,
    `drop sync trigger "${syncTriggerName(r)}" (catalog only)`,
  );
}

export function dropFunctionStatement(r: ResolvedMigration, ctx: PlanContext): PlannedStatement {
  return {
    step: NAME,
    lock: 'NONE',
    maxLockWaitMs: 0,
    maxDurationMs: 0,
    transactional: true,
    sql: `DROP FUNCTION IF EXISTS ${qualify(ctx.stateSchema, syncFunctionName(r))}()`,
    description: `drop sync function "${syncFunctionName(r)}" (no table lock)`,
  };
}

async function functionSource(
  ctx: ExecutorContext,
  r: ResolvedMigration,
): Promise<{ src: string; config: string[] | null } | null> {
  const row = (
    await ctx.knex.raw(
      `SELECT p.prosrc AS src, p.proconfig AS config FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE n.nspname = ? AND p.proname = ? AND p.pronargs = 0`,
      [ctx.stateSchema, syncFunctionName(r)],
    )
  ).rows[0] as { src: string; config: string[] | null } | undefined;
  return row ?? null;
}

/** proconfig keeps `SET search_path` flattened, quoting only names that need it. */
function normalized(config: string): string {
  return config.replace(/["\s]/g, '');
}

/** Installed, enabled and calling this migration's function: writers that bypass phaseflag are covered. */
export async function syncTriggerInstalled(ctx: ExecutorContext, r: ResolvedMigration): Promise<boolean> {
  const t = await readTrigger(ctx.knex, r.schema, r.table, syncTriggerName(r), ctx.stateSchema, syncFunctionName(r));
  return t.exists && t.enabled && t.matches;
}

/** The trigger exists at all (enabled or not): it must go before a column it names does. */
export async function syncTriggerPresent(ctx: ExecutorContext, r: ResolvedMigration): Promise<boolean> {
  return (await readTrigger(ctx.knex, r.schema, r.table, syncTriggerName(r), ctx.stateSchema, syncFunctionName(r)))
    .exists;
}

export const syncTrigger: Step = {
  name: NAME,
  plan: (r, ctx) => (syncTriggerApplies(r) ? [createFunctionStatement(r, ctx), createTriggerStatement(r, ctx)] : []),
  planRollback: (r, ctx) => [dropTriggerStatement(r), dropFunctionStatement(r, ctx)],
  async apply(ctx, r, opts) {
    if (!syncTriggerApplies(r)) return;
    const fn = await functionSource(ctx, r);
    const body = syncFunctionBody(r, ctx.stateSchema);
    // Replacing a function takes no table lock, but skipping an identical one keeps a re-run free of side effects.
    const pinned = pinnedSearchPath(r);
    const config = pinned === null ? '' : `search_path=${pinned}`;
    if (fn === null || fn.src !== body || normalized((fn.config ?? []).join()) !== normalized(config)) {
      await run(ctx, r, createFunctionStatement(r, ctx), opts);
    }
    if (!(await syncTriggerInstalled(ctx, r))) await run(ctx, r, createTriggerStatement(r, ctx), opts);
  },
  async rollback(ctx, r, opts) {
    if (await syncTriggerPresent(ctx, r)) await run(ctx, r, dropTriggerStatement(r), opts);
    if (await functionSource(ctx, r)) await run(ctx, r, dropFunctionStatement(r, ctx), opts);
  },
};
