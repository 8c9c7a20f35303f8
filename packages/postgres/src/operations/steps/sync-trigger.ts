import { quoteIdent } from '@phaseflag/core';
import type { ExecutorContext } from '../../context.js';
import type { PlannedStatement } from '../planned-statement.js';
import type { ResolvedMigration } from '../../catalog/resolved.js';
import { dollarTag, qualify } from '../../sql/text.js';
import { onTable, run, tableSql, type PlanContext, type Step } from './step.js';
import { syncFunctionBody } from './sync-function.js';
import { syncFunctionName, syncInsertTriggerName, syncTriggerName } from './sync-trigger-names.js';
import { readSyncTriggers, syncTriggersInstalled } from './sync-trigger-state.js';
import { renderCondition, syncUpdateCondition } from './sync-when.js';

export { syncFunctionName, syncInsertTriggerName, syncTriggerName };

const NAME = 'sync-trigger';

/**
 * Dual-write in the database, for writers that do not embed phaseflag (psql, cron jobs, other services): BEFORE
 * row triggers keep the two columns consistent, as pgroll's up/down triggers do. What they do to each row is
 * their function's body (sync-function.ts); this step installs the function and two triggers that call it:
 *
 *   zz_pf_sync_<id>          BEFORE UPDATE, WHEN (the writer changed something there is to sync: sync-when.ts)
 *   zz_pf_sync_<id>_insert   BEFORE INSERT
 *
 * Two triggers because a WHEN clause that reads OLD cannot be on an INSERT trigger; it is what makes an UPDATE of
 * an unrelated column cost no PL/pgSQL call. The UPDATE half keeps the name a single trigger had, the one the
 * backfill's trigger bypass and `phaseflag status` look for.
 *
 * Trigger order: Postgres fires the BEFORE triggers of a table in the byte order of their names (pgroll #352).
 * The name starts with "zz_" so that it fires after the table's own BEFORE triggers (any name sorting before
 * "zz_" — every name starting with a letter other than z, a digit or "_"): values those triggers set or
 * normalise are synced, not overwritten. A user trigger sorting after it that changes either column is seen by
 * verify.
 */

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

/** The UPDATE trigger's WHEN clause as phaseflag writes it; null when no UPDATE has anything to sync. */
export function syncUpdateWhen(r: ResolvedMigration): string | null {
  const condition = syncUpdateCondition(r);
  return condition === null ? null : renderCondition(condition, quoteIdent);
}

export function createTriggerStatement(r: ResolvedMigration, ctx: PlanContext): PlannedStatement {
  const update = quoteIdent(syncTriggerName(r));
  const insert = quoteIdent(syncInsertTriggerName(r));
  const fn = qualify(ctx.stateSchema, syncFunctionName(r));
  const when = syncUpdateWhen(r);
  return onTable(
    r,
    NAME,
    'ACCESS EXCLUSIVE',
    `DROP TRIGGER IF EXISTS ${update} ON ${tableSql(r)};\n` +
      `DROP TRIGGER IF EXISTS ${insert} ON ${tableSql(r)};\n` +
      (when === null
        ? ''
        : `CREATE TRIGGER ${update} BEFORE UPDATE ON ${tableSql(r)} FOR EACH ROW\n  WHEN (${when})\n  EXECUTE FUNCTION ${fn}();\n`) +
      `CREATE TRIGGER ${insert} BEFORE INSERT ON ${tableSql(r)} FOR EACH ROW EXECUTE FUNCTION ${fn}()`,
    `(re)create the BEFORE UPDATE … WHEN trigger "${syncTriggerName(r)}" and the BEFORE INSERT trigger "${syncInsertTriggerName(r)}" in one transaction (catalog only)`,
  );
}

export function dropTriggerStatement(r: ResolvedMigration): PlannedStatement {
  return onTable(
    r,
    NAME,
    'ACCESS EXCLUSIVE',
    `DROP TRIGGER IF EXISTS ${quoteIdent(syncTriggerName(r))} ON ${tableSql(r)};\n` +
      `DROP TRIGGER IF EXISTS ${quoteIdent(syncInsertTriggerName(r))} ON ${tableSql(r)}`,
    `drop sync triggers "${syncTriggerName(r)}" and "${syncInsertTriggerName(r)}" (catalog only)`,
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
  return syncTriggersInstalled(await readSyncTriggers(ctx.knex, r, ctx.stateSchema, r));
}

/** Either trigger exists at all (enabled or not): it must go before a column it names does. */
export async function syncTriggerPresent(ctx: ExecutorContext, r: ResolvedMigration): Promise<boolean> {
  const t = await readSyncTriggers(ctx.knex, r, ctx.stateSchema, r);
  return t.update.exists || t.insert.exists;
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
