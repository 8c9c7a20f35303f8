import { CatalogError, type Migration } from '@phaseflag/core';
import { resolveMigration } from '../../catalog/resolve.js';
import type { ResolvedMigration } from '../../catalog/resolved.js';
import type { ExecutorContext } from '../../context.js';
import {
  acknowledgeDdl,
  DDL_WATCH_VERSION,
  ddlWatchStatus,
  readRecordedDdl,
  type DdlWatchStatus,
} from '../../store/ddl-watch.js';
import { readStateStoreInfo, type StateStoreInfo } from '../../store/installer.js';
import type { PostgresStateStore } from '../../store/state-store.js';
import { syncTriggerApplies } from '../steps/sync-trigger.js';
import { catalogFindings } from './checks.js';
import { expectationsOf } from './expectations.js';
import { declaredType, tableExists } from './live.js';
import type { DriftFinding, DriftReport, StoreDriftReport } from './types.js';

/** What the inspection reads with: the operator's context and the state store. */
export interface DriftDeps {
  readonly ctx: ExecutorContext;
  readonly store: PostgresStateStore;
}

/** Read once for a store-wide inspection, shared by every migration's. */
interface StoreFacts {
  readonly info: StateStoreInfo;
  readonly watch: DdlWatchStatus;
}

async function storeFacts(ctx: ExecutorContext): Promise<StoreFacts> {
  const info = await readStateStoreInfo(ctx);
  return { info, watch: await ddlWatchStatus(ctx, info.version) };
}

/** The migration's table, as the state store recorded it, else as declared (the connection's schema if none). */
async function tableOf(deps: DriftDeps, m: Migration, installed: boolean): Promise<{ schema: string; name: string }> {
  const row = installed ? await deps.store.get(m.id) : null;
  if (row) return { schema: row.table_schema, name: row.table_name };
  const schema =
    m.table.schema ??
    ((await deps.ctx.knex.raw('SELECT current_schema() AS s')).rows[0].s as string | null) ??
    'public';
  return { schema, name: m.table.name };
}

/**
 * One migration's table against what its phase implies (see expectations.ts for what each phase implies, checks.ts
 * for each object), with the DDL recorded on the table that nobody acknowledged. Reads only: no lock beyond the
 * catalog reads and the rolled-back probes that resolving a declaration makes.
 */
export async function inspectDrift(deps: DriftDeps, m: Migration, facts?: StoreFacts): Promise<DriftReport> {
  const { ctx } = deps;
  const { info, watch } = facts ?? (await storeFacts(ctx));
  const row = info.installed ? await deps.store.get(m.id) : null;
  const phase = row?.phase ?? 'pending';
  const { schema, name } = await tableOf(deps, m, info.installed);
  const findings: DriftFinding[] = [];
  const blocking = phase !== 'contracted';
  // Not installed at all is no drift (nothing has run: every migration is pending); older than this code is.
  if (info.installed && info.version < info.latest) {
    findings.push({
      object: 'state store',
      name: ctx.stateSchema,
      expected: `version ${info.latest}`,
      actual: `version ${info.version}`,
      repair: {
        command: 'phaseflag install',
        sql: null,
        note: 'As the role that owns the state schema; any step the controller takes installs it too.',
      },
      blocking: false,
    });
  }
  const report = async (): Promise<DriftReport> => {
    const recordedDdl =
      info.version >= DDL_WATCH_VERSION ? await readRecordedDdl(ctx.knex, ctx.stateSchema, [{ schema, name }]) : [];
    return {
      migrationId: m.id,
      phase,
      table: `${schema}.${name}`,
      findings,
      recordedDdl,
      watch,
      drifted: findings.length > 0 || recordedDdl.length > 0,
      blocking: findings.some((f) => f.blocking),
      checkedAt: new Date(ctx.clock.now()),
    };
  };
  if (!(await tableExists(ctx.knex, schema, name))) {
    findings.push({
      object: 'table',
      name: `${schema}.${name}`,
      expected: "the migration's table",
      actual: 'missing (dropped or renamed)',
      repair: {
        command: null,
        sql: null,
        note: 'Restore or rename the table back, or roll the migration back (`phaseflag rollback`) and declare it anew.',
      },
      blocking,
    });
    return report();
  }
  let resolved: ResolvedMigration | null = null;
  let unresolved: CatalogError | null = null;
  try {
    resolved = await resolveMigration(ctx.knex, m, { stateSchema: ctx.stateSchema });
  } catch (e) {
    // Only the catalog's refusals are drift; a lock timeout or a lost connection is an error of the inspection.
    if (!(e instanceof CatalogError)) throw e;
    unresolved = e;
  }
  const oldColumnDropped = row?.old_column_dropped_at != null;
  const expect = expectationsOf(m, phase, {
    syncTriggerApplies: resolved
      ? syncTriggerApplies(resolved)
      : m.sync.trigger && (m.backfill !== null || (m.reverse !== null && m.oldColumn !== null)),
    oldColumnDropped,
  });
  const conflict = unresolved?.code === 'PF_COLUMN_TYPE_CONFLICT' ? (unresolved.value as { declared?: string }) : null;
  const newColumnType =
    resolved?.newColumnType ?? conflict?.declared ?? (await declaredType(ctx.knex, m).catch(() => null));
  // Findings below say more precisely what the two refusals found: the new column's type, the old column gone.
  const explained =
    (unresolved?.code === 'PF_COLUMN_TYPE_CONFLICT' && expect.newColumn) ||
    (unresolved?.code === 'PF_UNKNOWN_COLUMN' && unresolved.value === m.oldColumn && expect.oldColumn === 'present');
  // Before expand (or after a rollback) nothing of phaseflag's is there to drift: expand itself reports a misfit.
  if (unresolved && !explained && phase !== 'pending' && phase !== 'rolled-back') {
    findings.push({
      object: 'declaration',
      name: m.id,
      expected: 'the declaration resolves against the live catalog',
      actual: `${unresolved.code}: ${unresolved.message}`,
      repair: { command: null, sql: null, note: unresolved.hint ?? null },
      blocking,
    });
  }
  findings.push(
    ...(await catalogFindings(ctx.knex, {
      migration: m,
      phase,
      schema,
      table: name,
      stateSchema: ctx.stateSchema,
      expect,
      newColumnType,
      resolved,
      createdNewColumn: row?.created_new_column === true,
    })),
  );
  return report();
}

/** Every migration given, against one reading of the state store and the DDL watch (`Phaseflag.drift()`). */
export async function inspectStoreDrift(deps: DriftDeps, migrations: readonly Migration[]): Promise<StoreDriftReport> {
  const facts = await storeFacts(deps.ctx);
  const reports: DriftReport[] = [];
  for (const m of migrations) reports.push(await inspectDrift(deps, m, facts));
  return {
    stateSchema: deps.ctx.stateSchema,
    stateStore: { version: facts.info.version, latest: facts.info.latest },
    watch: facts.watch,
    migrations: reports,
    drifted: reports.some((r) => r.drifted),
    blocking: reports.some((r) => r.blocking),
  };
}

/**
 * Marks the recorded DDL on these migrations' tables as seen (by the context's actor): drift stops reporting it.
 * Returns how many entries were acknowledged; 0 where the store predates the DDL watch.
 */
export async function acknowledgeRecordedDdl(deps: DriftDeps, migrations: readonly Migration[]): Promise<number> {
  const info = await readStateStoreInfo(deps.ctx);
  if (info.version < DDL_WATCH_VERSION) return 0;
  const tables = await Promise.all(migrations.map((m) => tableOf(deps, m, true)));
  return acknowledgeDdl(deps.ctx.knex, deps.ctx.stateSchema, tables, deps.ctx.actor);
}
