import { SpanStatusCode, type Span } from '@opentelemetry/api';
import {
  ATTR, ConflictError, decideTransition, defineMigration, GuardRefusedError, isInFlight, METRIC, SPAN, VerifyFailedError,
  PhaseflagError,
  type Action, type FlagSource, type GuardFacts, type Migration, type MigrationInput, type Phase, type TransitionDecision,
} from '@phaseflag/core';
import type { Knex } from 'knex';
import { createContext, type ExecutorContext, type ExecutorContextOptions } from './context.js';
import { resolveMigration } from './catalog.js';
import type { ResolvedMigration } from './resolved.js';
import { PostgresStateStore, type EventRow, type InstanceRow, type MigrationRow } from './store/state-store.js';
import { withSessionLock } from './store/session-lock.js';
import * as ops from './operations.js';
import { KnexRouter, type KnexRouterOptions } from './knex-router.js';

export interface PhaseflagOptions extends ExecutorContextOptions {
  /** How often watchers poll the state store as a backstop to LISTEN/NOTIFY. */
  pollIntervalMs?: number;
  /**
   * How long destructive steps (dropping a column at rollback or contract) wait after the phase change has been
   * announced, so that every service instance has stopped using the column before it goes.
   */
  graceMs?: number;
  /** Heartbeats older than this do not count as live instances. */
  instanceTtlMs?: number;
}

export interface BackfillOptions {
  signal?: AbortSignal;
  onProgress?: (p: ops.BackfillProgress) => void;
  batch?: Partial<Migration['batch']>;
  throttle?: Partial<Migration['throttle']>;
}

export interface MigrationStatus {
  id: string;
  phase: Phase;
  version: number;
  row: MigrationRow;
  progress: ops.BackfillProgress | null;
  instances: InstanceRow[];
  events: EventRow[];
}

/**
 * The executor for one database: installs the state store and hands out a `MigrationHandle` per declared
 * migration. Dependencies are passed in; nothing global is touched except the OpenTelemetry API's defaults.
 */
export class Phaseflag {
  readonly ctx: ExecutorContext;
  readonly store: PostgresStateStore;
  readonly graceMs: number;
  readonly instanceTtlMs: number;
  readonly pollIntervalMs: number;
  private readonly handles = new Map<string, MigrationHandle>();
  private readonly routers = new Set<KnexRouter>();

  constructor(options: PhaseflagOptions) {
    this.ctx = createContext(options);
    this.pollIntervalMs = options.pollIntervalMs ?? 1000;
    this.graceMs = options.graceMs ?? 2 * this.pollIntervalMs;
    this.instanceTtlMs = options.instanceTtlMs ?? 30_000;
    this.store = new PostgresStateStore(this.ctx, { pollIntervalMs: this.pollIntervalMs });
  }

  get knex(): Knex {
    return this.ctx.knex;
  }

  install(): Promise<{ from: number; to: number }> {
    return this.store.install();
  }

  migration(definition: Migration | MigrationInput): MigrationHandle {
    const migration = 'primaryKey' in definition && Array.isArray(definition.primaryKey) && Object.isFrozen(definition)
      ? (definition as Migration) : defineMigration(definition as MigrationInput);
    const existing = this.handles.get(migration.id);
    if (existing) return existing;
    const handle = new MigrationHandle(this, migration);
    this.handles.set(migration.id, handle);
    return handle;
  }

  /** @internal */
  trackRouter(router: KnexRouter): void {
    this.routers.add(router);
  }

  /** @internal */
  untrackRouter(router: KnexRouter): void {
    this.routers.delete(router);
  }

  async close(): Promise<void> {
    for (const r of [...this.routers]) await r.close();
    await this.store.close();
  }
}

export class MigrationHandle {
  readonly id: string;

  constructor(readonly pf: Phaseflag, readonly migration: Migration) {
    this.id = migration.id;
  }

  private get ctx(): ExecutorContext {
    return this.pf.ctx;
  }

  private get store(): PostgresStateStore {
    return this.pf.store;
  }

  /** Checks the declaration against the live catalog; throws a typed error and changes nothing when it does not fit. */
  resolve(): Promise<ResolvedMigration> {
    return resolveMigration(this.ctx.knex, this.migration);
  }

  /** The exact SQL of every phase with the lock each statement takes; nothing is executed. */
  async plan(): Promise<ops.MigrationPlan> {
    return ops.plan(this.ctx, this.migration);
  }

  /** Registers the migration in the state store (phase `pending`) after checking it against the catalog. */
  async register(): Promise<MigrationRow> {
    const r = await this.resolve();
    return this.registerResolved(r);
  }

  private async registerResolved(r: ResolvedMigration): Promise<MigrationRow> {
    const row = await this.store.register({
      id: this.id, table_schema: r.schema, table_name: r.table, old_column: this.migration.oldColumn, new_column: this.migration.newColumn.name,
      definition: this.migration as unknown as Record<string, unknown>,
    });
    if (row.table_schema !== r.schema || row.table_name !== r.table || row.old_column !== this.migration.oldColumn || row.new_column !== this.migration.newColumn.name
      || canonical(shape(row.definition)) !== canonical(shape(this.migration as unknown as Record<string, unknown>))) {
      if (isInFlight(row.phase) || row.phase === 'contracted') {
        throw new PhaseflagError('PF_DEFINITION_CHANGED', `Migration "${this.id}" is ${row.phase} but its declaration changed (table, columns, type or expressions).`, {
          value: { stored: shape(row.definition), declared: shape(this.migration as unknown as Record<string, unknown>) }, migrationId: this.id,
          hint: 'Roll it back before changing what it does, or declare a new migration with a new id.',
        });
      }
      await this.store.update(this.id, {
        definition: JSON.stringify(this.migration), table_schema: r.schema, table_name: r.table, old_column: this.migration.oldColumn, new_column: this.migration.newColumn.name,
      });
    } else if (canonical(row.definition) !== canonical(this.migration)) {
      // Operational settings (batch size, throttle, flags) may change at any time.
      await this.store.updateDefinition(this.id, this.migration as unknown as Record<string, unknown>);
    }
    return (await this.store.get(this.id))!;
  }

  async status(): Promise<MigrationStatus> {
    const row = await this.store.get(this.id);
    if (!row) {
      throw new PhaseflagError('PF_UNKNOWN_MIGRATION', `Migration "${this.id}" is not in the state store.`, { value: this.id, migrationId: this.id, hint: 'Run expand (or register) first.' });
    }
    const [progress, instances, events] = await Promise.all([
      ops.progress(this.ctx, this.id).catch(() => null),
      this.store.instances(this.id, this.pf.instanceTtlMs),
      this.store.events(this.id, 50),
    ]);
    return { id: this.id, phase: row.phase, version: row.version, row, progress, instances, events };
  }

  // ---- transitions -------------------------------------------------------------------------------------------

  /** Adds the new column online (and its index and check), then moves to `expanded`. */
  async expand(options: { signal?: AbortSignal } = {}): Promise<TransitionDecision> {
    return this.transition('expand', {}, {
      before: async (r, row) => {
        // Remember before the DDL whether this migration creates the column, so that a crash between the two
        // cannot make rollback think the user made it (and leave it behind) — or drop a column the user made.
        if (!r.newColumnExists && !row.created_new_column) await this.store.update(this.id, { created_new_column: true });
        await ops.expand(this.ctx, r, options.signal);
      },
    });
  }

  /** Services write both columns from now on (and the sync trigger covers writers that do not embed phaseflag). */
  async startDualWrite(): Promise<TransitionDecision> {
    return this.transition('dual-write', {}, {
      before: async (r) => {
        if (this.migration.sync.trigger) await ops.installSync(this.ctx, r);
      },
    });
  }

  async stopDualWrite(): Promise<TransitionDecision> {
    return this.transition('stop-dual-write', {}, { after: async (r) => ops.dropSync(this.ctx, r) });
  }

  /**
   * Starts (from dual-write), resumes (from paused or an interrupted run) and runs the backfill until it
   * completes, the signal aborts it, or the phase changes under it (pause, rollback). On completion the phase
   * moves to `backfilled`.
   */
  async backfill(options: BackfillOptions = {}): Promise<ops.BackfillResult & { phase: Phase }> {
    let row = await this.store.get(this.id);
    if (row?.phase === 'dual-write' || row === null) {
      await this.transition('backfill', {}, {
        before: async (r) => {
          await ops.prepareBackfill(this.ctx, r, { workers: options.batch?.workers ?? this.migration.batch.workers });
        },
        extra: { backfill_started_at: this.ctx.knex.fn.now() },
      });
    } else if (row.phase === 'paused') {
      await this.resume();
    } else if (row.phase !== 'backfilling') {
      await this.refuse('backfill', row.phase, `the backfill runs from dual-write, paused or backfilling, not from ${row.phase}`, 'Start dual-write first.');
    }
    const r = await this.resolve();
    await ops.prepareBackfill(this.ctx, r, { workers: options.batch?.workers ?? this.migration.batch.workers });
    const result = await ops.runBackfill(this.ctx, r, options);
    row = (await this.store.get(this.id))!;
    if (result.completed && row.phase === 'backfilling') {
      await this.transition('complete-backfill', {}, { extra: { backfill_completed_at: this.ctx.knex.fn.now() } });
      row = (await this.store.get(this.id))!;
    }
    return { ...result, phase: row.phase };
  }

  /** Pauses a running backfill: the runner stops after its current batch (it checks the phase in every batch). */
  pause(): Promise<TransitionDecision> {
    return this.transition('pause');
  }

  resume(): Promise<TransitionDecision> {
    return this.transition('resume');
  }

  /**
   * Proves, for every row, that the new column equals the backfill expression; only a clean run moves the
   * phase to `verified`. A dirty run is recorded with sample keys and throws PF_VERIFY_FAILED.
   */
  async verify(options: { batchSize?: number; signal?: AbortSignal } = {}): Promise<ops.VerifyResult> {
    const row = await this.store.get(this.id);
    const phase = row?.phase ?? 'pending';
    if (phase !== 'backfilled' && phase !== 'verified' && phase !== 'read-new') {
      await this.refuse('verify', phase, `verify runs once the backfill is complete, not in ${phase}`, 'Run the backfill to completion first.');
    }
    const r = await this.resolve();
    const result = await ops.verify(this.ctx, r, options);
    const stored = { clean: result.clean, mismatches: result.mismatches, rowsChecked: result.rowsChecked, sampleKeys: result.sampleKeys.slice(0, 20) };
    await this.store.update(this.id, { verify_result: JSON.stringify(stored), verified_at: this.ctx.knex.fn.now() });
    await this.store.recordEvent({ migration_id: this.id, kind: 'verify', action: 'verify', from_phase: phase, to_phase: null, reason: result.clean ? 'clean' : `${result.mismatches} mismatches`, detail: stored });
    if (!result.clean) {
      if (phase === 'backfilled') {
        await this.transition('verify').catch((e) => {
          if (!(e instanceof GuardRefusedError)) throw e;
        });
      }
      throw new VerifyFailedError('PF_VERIFY_FAILED', `Verify of "${this.id}" found ${result.mismatches} row(s) whose ${this.migration.newColumn.name} differs from the backfill expression.`, {
        value: { mismatches: result.mismatches, sampleKeys: result.sampleKeys.slice(0, 10) }, migrationId: this.id,
        hint: 'Find what wrote those rows around dual-write (a writer without the trigger or router?), then run backfill and verify again.',
      });
    }
    if (phase === 'backfilled') await this.transition('verify');
    return result;
  }

  /** Allows reads of the new column (each request still asks the read-new flag). */
  readNew(): Promise<TransitionDecision> {
    return this.transition('read-new');
  }

  /** Sends every read back to the old column. */
  readOld(): Promise<TransitionDecision> {
    return this.transition('read-old');
  }

  /**
   * Stops writing the old column and enforces the new column's constraints; drops the old column when asked.
   * Irreversible: needs `confirm: true`.
   */
  async contract(options: { confirm?: boolean; dropOldColumn?: boolean; signal?: AbortSignal } = {}): Promise<TransitionDecision> {
    return this.transition('contract', { confirmed: options.confirm === true }, {
      // The old column may be NOT NULL: make it nullable while every writer still fills it, so that writers
      // that stop writing it after the phase change cannot fail.
      before: async (r) => ops.contractBefore(this.ctx, r, options.signal),
      after: async (r) => {
        await this.grace();
        await ops.contractAfter(this.ctx, r, { dropOldColumn: options.dropOldColumn === true, signal: options.signal });
      },
    });
  }

  /**
   * Abandons the migration from any phase before contracted: reads and writes go back to the old column at
   * once (the phase changes first), then, after the grace period, the trigger, index, check and — if this
   * migration created it — the new column are dropped. Expand may start it again afterwards.
   */
  async rollback(options: { dropNewColumn?: boolean; signal?: AbortSignal } = {}): Promise<TransitionDecision> {
    return this.transition('rollback', {}, {
      extra: { rows_backfilled: 0, backfill_started_at: null, backfill_completed_at: null, verify_result: null, verified_at: null },
      after: async (r, row) => {
        await this.grace();
        await ops.rollback(this.ctx, r, { dropNewColumn: (options.dropNewColumn ?? true) && row.created_new_column, signal: options.signal });
        if ((options.dropNewColumn ?? true) && row.created_new_column) await this.store.update(this.id, { created_new_column: false });
      },
    });
  }

  /** A router for application code, kept on the current phase through LISTEN/NOTIFY and polling. */
  async router(flags: FlagSource, options: KnexRouterOptions = {}): Promise<KnexRouter> {
    const r = await this.resolve();
    const router = new KnexRouter(this.pf, r, flags, options);
    await router.ready();
    return router;
  }

  private async grace(): Promise<void> {
    if (this.pf.graceMs > 0) await this.ctx.clock.sleep(this.pf.graceMs);
  }

  private async facts(row: MigrationRow, r: ResolvedMigration, extra: Partial<GuardFacts>): Promise<GuardFacts> {
    const cols = [this.migration.newColumn.name, ...(this.migration.oldColumn ? [this.migration.oldColumn] : [])];
    const [triggerInstalled, progress, instances, conflicts] = await Promise.all([
      ops.syncInstalled(this.ctx, r),
      ops.progress(this.ctx, this.id).catch(() => null),
      this.store.instances(this.id, this.pf.instanceTtlMs),
      this.store.conflicts(this.id, r.schema, r.table, cols),
    ]);
    const verifiedAfterBackfill = row.verified_at !== null && row.backfill_completed_at !== null && row.verified_at >= row.backfill_completed_at;
    return {
      phase: row.phase,
      newColumnReady: r.newColumnExists,
      triggerInstalled,
      liveInstances: instances.filter((i) => i.live),
      backfillComplete: progress?.done === true,
      verify: row.verify_result ? { clean: row.verify_result.clean, mismatches: row.verify_result.mismatches, afterBackfill: verifiedAfterBackfill } : null,
      confirmed: false,
      conflicts,
      ...extra,
    };
  }

  private async refuse(action: Action, phase: Phase, reason: string, hint: string, code?: 'PF_CONFIRMATION_REQUIRED' | 'PF_IRREVERSIBLE' | 'PF_MIGRATION_CONFLICT'): Promise<never> {
    await this.ctx.tracer.startActiveSpan(SPAN.refused, async (span) => {
      span.setAttributes({ [ATTR.migrationId]: this.id, [ATTR.action]: action, [ATTR.fromPhase]: phase, [ATTR.reason]: reason, [ATTR.actor]: this.ctx.actor });
      span.setStatus({ code: SpanStatusCode.ERROR, message: reason });
      span.end();
    });
    this.ctx.meter.createCounter(METRIC.refusals).add(1, { [ATTR.action]: action });
    await this.store.recordEvent({ migration_id: this.id, kind: 'refused', action, from_phase: phase, to_phase: null, reason, detail: { hint } }).catch(() => undefined);
    this.ctx.logger.warn(`phaseflag: ${this.id}: ${action} refused: ${reason}`, { migrationId: this.id, action, phase, hint });
    const Err = code === 'PF_MIGRATION_CONFLICT' ? ConflictError : null;
    if (Err) throw new Err(code!, `Cannot ${action} "${this.id}": ${reason}.`, { value: { phase }, hint, migrationId: this.id });
    throw new GuardRefusedError(`Cannot ${action} "${this.id}": ${reason}.`, { from: phase, action, value: { phase }, hint, migrationId: this.id, code });
  }

  /**
   * One transition: under this migration's step lock, read the facts, decide with the guard, apply the DDL that
   * must come before the phase change, record the change (compare-and-set, event, NOTIFY) and apply what must
   * come after. Each allowed and each refused transition is recorded and is a span.
   */
  private async transition(
    action: Action,
    extraFacts: Partial<GuardFacts> = {},
    effects: {
      before?: (r: ResolvedMigration, row: MigrationRow) => Promise<void>;
      after?: (r: ResolvedMigration, row: MigrationRow) => Promise<void>;
      extra?: Record<string, unknown>;
    } = {},
  ): Promise<TransitionDecision> {
    return this.ctx.tracer.startActiveSpan(SPAN.transition, async (span: Span) => {
      span.setAttributes({ [ATTR.migrationId]: this.id, [ATTR.action]: action, [ATTR.actor]: this.ctx.actor, [ATTR.table]: `${this.migration.table.schema ?? ''}${this.migration.table.schema ? '.' : ''}${this.migration.table.name}` });
      try {
        return await withSessionLock(this.ctx, 'step', this.id, async () => {
          const r = await this.resolve();
          const row = await this.registerResolved(r);
          const facts = await this.facts(row, r, extraFacts);
          const decision = decideTransition(action, facts);
          span.setAttributes({ [ATTR.fromPhase]: decision.from, [ATTR.toPhase]: decision.to });
          if (!decision.allowed) {
            span.updateName(SPAN.refused);
            span.setAttribute(ATTR.reason, decision.reason);
            const code = decision.from === 'contracted' ? 'PF_IRREVERSIBLE'
              : action === 'contract' && decision.from === 'read-new' && !facts.confirmed ? 'PF_CONFIRMATION_REQUIRED'
              : action === 'expand' && facts.conflicts.length > 0 ? 'PF_MIGRATION_CONFLICT' : undefined;
            await this.refuseRecorded(action, decision.from, decision.reason, decision.hint, code);
          }
          await effects.before?.(r, row);
          await this.ctx.knex.transaction((trx) => this.store.recordTransition(trx, {
            id: this.id, from: decision.from, to: decision.to, version: row.version, action, extra: effects.extra,
          }));
          this.ctx.meter.createCounter(METRIC.transitions).add(1, { [ATTR.action]: action });
          this.ctx.logger.info(`phaseflag: ${this.id}: ${decision.from} → ${decision.to}`, { migrationId: this.id, action });
          await effects.after?.(await this.resolve(), row);
          return decision;
        });
      } catch (error) {
        span.recordException(error as Error);
        span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
        throw error;
      } finally {
        span.end();
      }
    });
  }

  /** Records a refusal seen inside a transition span (which already carries its name and reason). */
  private async refuseRecorded(action: Action, phase: Phase, reason: string, hint: string, code?: 'PF_CONFIRMATION_REQUIRED' | 'PF_IRREVERSIBLE' | 'PF_MIGRATION_CONFLICT'): Promise<never> {
    this.ctx.meter.createCounter(METRIC.refusals).add(1, { [ATTR.action]: action });
    await this.store.recordEvent({ migration_id: this.id, kind: 'refused', action, from_phase: phase, to_phase: null, reason, detail: { hint } });
    this.ctx.logger.warn(`phaseflag: ${this.id}: ${action} refused: ${reason}`, { migrationId: this.id, action, phase, hint });
    if (code === 'PF_MIGRATION_CONFLICT') throw new ConflictError(code, `Cannot ${action} "${this.id}": ${reason}.`, { value: { phase }, hint, migrationId: this.id });
    throw new GuardRefusedError(`Cannot ${action} "${this.id}": ${reason}.`, { from: phase, action, value: { phase }, hint, migrationId: this.id, code });
  }
}

/** JSON with sorted keys: jsonb does not keep key order, so stored and declared definitions compare by content. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (v !== null && typeof v === 'object' && !Array.isArray(v)
    ? Object.fromEntries(Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
    : v));
}

/** What a migration does (as opposed to how fast): the part that may not change while it is in flight. */
function shape(def: Record<string, unknown>): unknown {
  const d = def as unknown as Migration;
  return { table: d.table, primaryKey: d.primaryKey, oldColumn: d.oldColumn, newColumn: d.newColumn, backfill: d.backfill, reverse: d.reverse, sync: d.sync };
}
