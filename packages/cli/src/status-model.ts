import {
  decideNext,
  decideTransition,
  PHASE_FLAGS,
  readFlagState,
  TRANSITIONS,
  type FlagSource,
  type GuardFacts,
  type Migration,
  type NextStep,
  type PhaseFlag,
  type PhaseFlagStates,
} from '@phaseflag/core';
import type { MigrationHandle, StoredMigration } from '@phaseflag/postgres';
import { driftHolds, driftJson, type DriftJson } from './drift-view.js';
import { describeError } from './errors.js';
import { underivableJson, type UnderivableJson } from './underivable-view.js';
import { shadowJson, type ShadowJson } from './shadow-view.js';

/** One migration as `status --json` prints it (the README documents this shape; fields are only ever added). */
export interface MigrationStatusJson {
  id: string;
  /**
   * `schema.table` as the database resolved it (a table declared without a schema resolves through the
   * connection's search_path); the declared name as written when it cannot be resolved (see `error`).
   */
  table: string;
  oldColumn: string | null;
  /** Contract dropped the old column (recorded in the state store). */
  oldColumnDropped: boolean;
  newColumn: string;
  /** `pending` also for a migration the state store has not seen. */
  phase: string;
  version: number;
  updatedAt: string | null;
  updatedBy: string | null;
  flags: Array<{ role: PhaseFlag; name: string; enabled: boolean | null; fullyOn: boolean | null }>;
  /** Where flags came from: `unleash`, or `none` (not configured: every flag null). */
  flagSource: 'unleash' | 'none';
  /** Every transition that may start from this phase, and whether its guard holds now. */
  guards: Array<{ action: string; to: string; allowed: boolean; reason: string | null; hint: string | null }>;
  /** What a controller would do now with these flags (`phaseflag run`); null when the flags are not known. */
  next: { kind: NextStep['kind']; action: string | null; why: string; hint: string | null } | null;
  backfill: {
    rowsDone: number;
    rowsEstimate: number;
    percent: number;
    done: boolean;
    rowsPerSecond: number | null;
    etaSeconds: number | null;
    ranges: number;
    knobs: { batchSize: number | null; throttle: boolean; pauseMs: number | null };
    /** The backend running it now (any process), or null. */
    runner: { pid: number; applicationName: string | null } | null;
  } | null;
  /** The last verify; `lsn`: the primary's WAL position when the migration became verified (replicas read new past it). */
  verify: { clean: boolean; mismatches: number; rowsChecked: number; at: string | null; lsn: string | null } | null;
  /**
   * Set while `read-old` by hand holds every read on the old column: a controller does not move back to read-new
   * until the read-new flag has been seen off (then on again), or `read-new` is run. null when no hold stands.
   */
  readsHeld: { since: string } | null;
  /** Rows the backfill expression cannot derive (recorded by the trigger, preflight, backfill or verify): they block verified. */
  underivable: UnderivableJson;
  /** Why the migration is paused, when it is (a failed backfill names its row here). */
  pausedReason: string | null;
  instances: Array<{
    instanceId: string;
    phase: string;
    live: boolean;
    writesOld: boolean;
    writesNew: boolean;
    readsOld: boolean;
    readsNew: boolean;
    lastSeen: string;
    host: string | null;
    pid: number | null;
  }>;
  /** The table against what the phase implies (`phaseflag drift`); null when the store does not know the migration. */
  drift: DriftJson | null;
  /** Shadow reads (counts per instance, mismatches, the guard's verdict); null when the migration declares none. */
  shadow: ShadowJson | null;
  /** Set when the migration cannot be checked against the database (missing table, bad expression, …). */
  error: { code: string; message: string; hint: string | null } | null;
}

/** `installed: false`: no state store yet; only the catalog is read (every migration is pending). */
export async function collectStatus(
  handle: MigrationHandle,
  source: FlagSource | null,
  installed = true,
): Promise<MigrationStatusJson> {
  const m = handle.migration;
  const flags = PHASE_FLAGS.map((role) => {
    const state = source ? readFlagState(source, m.flags[role]) : undefined;
    return { role, name: m.flags[role], enabled: state?.enabled ?? null, fullyOn: state?.fullyOn ?? null };
  });
  const base = {
    id: m.id,
    table: m.table.schema ? `${m.table.schema}.${m.table.name}` : m.table.name,
    oldColumn: m.oldColumn,
    oldColumnDropped: false,
    newColumn: m.newColumn.name,
    flags,
    flagSource: source ? ('unleash' as const) : ('none' as const),
  };
  let inspected: Awaited<ReturnType<MigrationHandle['inspect']>>;
  try {
    // Read-only: status never installs, registers or updates anything (a SELECT-only role runs it).
    inspected = await handle.inspect({ register: false });
  } catch (error) {
    const e = describeError(error);
    if (e.code === 'PF_DATABASE_UNAVAILABLE' || e.code === 'PF_STATE_UNAVAILABLE') throw error;
    // Where the store has it registered, that is where it was resolved last.
    const status = await (installed ? handle.status() : Promise.reject(new Error('no store'))).catch(() => null);
    const stored = status?.record ?? null;
    return {
      ...base,
      ...(stored ? { table: `${stored.tableSchema}.${stored.tableName}` } : {}),
      phase: 'pending',
      version: 0,
      updatedAt: null,
      updatedBy: null,
      guards: [],
      next: null,
      backfill: null,
      verify: null,
      readsHeld: null,
      instances: [],
      underivable: { count: 0, rows: [] },
      pausedReason: null,
      // A declaration the catalog refuses is often drift itself (a column's type changed by hand): it says which.
      drift: status ? driftJson(status.drift) : null,
      shadow: shadowJson(status?.shadow, source),
      error: { code: e.code, message: e.message, hint: e.hint },
    };
  }
  const { record, facts, instances } = inspected;
  // Nothing recorded yet (no store, or the store does not know the migration): no progress, events or rows.
  const unrecorded = {
    progress: null,
    underivable: { count: 0, rows: [], stoppedBackfill: 0 },
    events: [],
    drift: null,
  };
  const [status, runner] = installed
    ? await Promise.all([
        handle.status().catch((error: unknown) => {
          if (describeError(error).code === 'PF_UNKNOWN_MIGRATION') return unrecorded;
          throw error;
        }),
        handle.backfillRunner(),
      ])
    : [unrecorded, null];
  const p = status.progress;
  const knobs = record.backfillKnobs;
  return {
    ...base,
    // The schema the catalog resolved the table in (the stored one once registered).
    table: `${record.tableSchema}.${record.tableName}`,
    oldColumnDropped: record.oldColumnDroppedAt != null,
    phase: record.phase,
    version: record.version,
    updatedAt: record.updatedAt ? new Date(record.updatedAt).toISOString() : null,
    updatedBy: record.updatedBy,
    guards: guardsFor(facts),
    next: source
      ? driftHolds(nextStep(facts, source, m, runner !== null, record.readsHeldAt != null), status.drift)
      : null,
    backfill:
      p && p.ranges.length > 0
        ? {
            rowsDone: p.rowsDone,
            rowsEstimate: p.rowsEstimate,
            percent: p.done
              ? 100
              : p.rowsEstimate > 0
                ? Math.min(99.9, Math.round((p.rowsDone / p.rowsEstimate) * 1000) / 10)
                : 0,
            done: p.done,
            rowsPerSecond: p.rowsPerSecond ?? null,
            etaSeconds: p.etaSeconds ?? null,
            ranges: p.ranges.length,
            knobs: {
              batchSize: typeof knobs.batchSize === 'number' ? knobs.batchSize : null,
              throttle: knobs.throttle === true,
              pauseMs: typeof knobs.pauseMs === 'number' ? knobs.pauseMs : null,
            },
            runner: runner ? { pid: runner.pid, applicationName: runner.application_name } : null,
          }
        : null,
    verify: record.verifyResult
      ? {
          ...pick(record.verifyResult),
          at: record.verifiedAt ? new Date(record.verifiedAt).toISOString() : null,
          lsn: record.verifiedLsn ?? null,
        }
      : null,
    readsHeld: record.readsHeldAt ? { since: new Date(record.readsHeldAt).toISOString() } : null,
    underivable: underivableJson(status.underivable),
    pausedReason:
      record.phase === 'paused'
        ? (status.events.filter((e) => e.kind === 'transition' && e.toPhase === 'paused').at(-1)?.reason ?? null)
        : null,
    instances: instances.map((i) => ({
      instanceId: i.instanceId,
      phase: i.phase,
      live: i.live,
      writesOld: i.writesOld,
      writesNew: i.writesNew,
      readsOld: i.readsOld,
      readsNew: i.readsNew,
      lastSeen: new Date(i.lastSeen).toISOString(),
      host: i.host,
      pid: i.pid,
    })),
    drift: status.drift ? driftJson(status.drift) : null,
    shadow: shadowJson('shadow' in status ? status.shadow : null, source),
    error: null,
  };
}

function pick(v: { clean: boolean; mismatches: number; rowsChecked: number }): {
  clean: boolean;
  mismatches: number;
  rowsChecked: number;
} {
  return { clean: v.clean, mismatches: v.mismatches, rowsChecked: v.rowsChecked };
}

/**
 * The guard of every transition that may start from the current phase, decided by core's decideTransition over
 * the facts the engine reads. Contract is asked as if confirmed: its confirmation is the operator's (--confirm),
 * so what is worth showing is whether anything else holds it back.
 */
function guardsFor(facts: GuardFacts): MigrationStatusJson['guards'] {
  return TRANSITIONS.filter((t) => t.from.includes(facts.phase) && t.action !== 'complete-backfill').map((t) => {
    const d = decideTransition(t.action, { ...facts, confirmed: t.action === 'contract' ? true : facts.confirmed });
    const needsConfirm = t.action === 'contract' && d.allowed;
    return {
      action: t.action,
      to: t.to,
      allowed: d.allowed,
      reason: d.allowed ? (needsConfirm ? 'holds; needs --confirm (irreversible)' : null) : d.reason,
      hint: d.allowed ? null : d.hint,
    };
  });
}

function nextStep(
  facts: GuardFacts,
  source: FlagSource,
  m: Migration,
  backfillRunning: boolean,
  readsHeld: boolean,
): MigrationStatusJson['next'] {
  const flags = Object.fromEntries(
    PHASE_FLAGS.map((r) => [r, readFlagState(source, m.flags[r])]),
  ) as unknown as PhaseFlagStates;
  // A runner anywhere counts: `backfilling` with one elsewhere is not a run to resume.
  const step = decideNext({ facts, flags, backfillRunning, readsHeld });
  switch (step.kind) {
    case 'act':
      return { kind: 'act', action: step.action, why: step.why, hint: null };
    case 'refuse':
      return { kind: 'refuse', action: step.action, why: step.reason, hint: step.hint };
    case 'none':
      return { kind: 'none', action: null, why: step.why, hint: null };
  }
}

/** A migration the state store holds that the config does not declare (`status --json`'s `notInConfig`). */
export interface StoredOnlyJson {
  id: string;
  table: string;
  oldColumn: string | null;
  newColumn: string;
  phase: string;
  version: number;
  /** Its sync trigger is still on the table: every write to the table goes through it. */
  syncTriggerInstalled: boolean;
  updatedAt: string | null;
  updatedBy: string | null;
}

export function storedOnly(stored: readonly StoredMigration[], declared: ReadonlySet<string>): StoredOnlyJson[] {
  return stored
    .filter((m) => !declared.has(m.record.id))
    .map(({ record: r, syncTriggerInstalled }) => ({
      id: r.id,
      table: `${r.tableSchema}.${r.tableName}`,
      oldColumn: r.oldColumn,
      newColumn: r.newColumn,
      phase: r.phase,
      version: r.version,
      syncTriggerInstalled,
      updatedAt: r.updatedAt ? new Date(r.updatedAt).toISOString() : null,
      updatedBy: r.updatedBy,
    }));
}
