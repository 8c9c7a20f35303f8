import { SpanStatusCode, type Attributes, type Link, type Span } from '@opentelemetry/api';
import {
  ATTR, decideTransition, defineMigration, GuardRefusedError, isInFlight, METRIC, SPAN, VerifyFailedError,
  PhaseflagError,
  type Action, type FlagSource, type GuardFacts, type Logger, type Migration, type MigrationInput, type Phase, type TransitionDecision,
} from '@phaseflag/core';
import type { Knex } from 'knex';
import { createContext, type ExecutorContext, type ExecutorContextOptions } from './context.js';
import { resolveMigration } from './catalog.js';
import type { ResolvedMigration } from './resolved.js';
import { PostgresStateStore, type EventRow, type InstanceRow, type MigrationRow } from './store/state-store.js';
import { withSessionLock } from './store/session-lock.js';
import * as ops from './operations.js';
import { KnexRouter, type KnexRouterOptions } from './knex-router.js';
import { Controller, type ControllerOptions } from './controller.js';
import { recordRefusal, refusalError, type RefusalCode } from './refusals.js';
import { findBackfillRunner, type BackfillRunner } from './backfill/holder.js';
import { readBackfillKnobs, setBackfillKnobs, type BackfillKnobs, type BackfillKnobsPatch } from './backfill/knobs.js';

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

/**
 * What caused a transition, for the record: span links (the flag change, the controller's leadership), extra span
 * attributes (feature-flag attributes), and a detail stored with the transition's event row.
 */
export interface TransitionCause {
  links?: Link[];
  attributes?: Attributes;
  detail?: Record<string, unknown>;
  /**
   * Called once the phase change is committed (before what follows it, e.g. contract's drops): a controller
   * reports the transitions it applies through it. An exception it throws is logged and ignored.
   */
  onApplied?: (applied: { action: Action; from: Phase; to: Phase; at: Date }) => void;
}

export interface TransitionOptions {
  cause?: TransitionCause;
}

export interface BackfillOptions extends TransitionOptions {
  signal?: AbortSignal;
  onProgress?: (p: ops.BackfillProgress) => void;
  batch?: Partial<Migration['batch']>;
  throttle?: Partial<Migration['throttle']>;
}

/** A migration as declared, or its handle. */
export type MigrationRef = MigrationHandle | Migration | MigrationInput;

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
  private readonly controllers = new Set<Controller>();

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

  /**
   * A controller that moves the given migrations by their flags (see Controller). Call `start()`; any number of
   * instances may run one, one leads each migration at a time.
   */
  controller(migrations: MigrationRef | readonly MigrationRef[], options: ControllerOptions): Controller {
    const list = (Array.isArray(migrations) ? migrations : [migrations]) as readonly MigrationRef[];
    const controller = new Controller(this, list.map((m) => (m instanceof MigrationHandle ? m : this.migration(m))), options);
    this.controllers.add(controller);
    return controller;
  }

  /** @internal */
  trackRouter(router: KnexRouter): void {
    this.routers.add(router);
  }

  /** @internal */
  untrackRouter(router: KnexRouter): void {
    this.routers.delete(router);
  }

  /** Stops its controllers, closes its routers and the state store's watcher. */
  async close(): Promise<void> {
    for (const c of [...this.controllers]) await c.stop();
    this.controllers.clear();
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

  /**
   * Checks the declaration against the live catalog; throws a typed error and changes nothing when it does not
   * fit. A missing old column fits only once the migration is contracted with the drop recorded in the store.
   */
  resolve(): Promise<ResolvedMigration> {
    return resolveMigration(this.ctx.knex, this.migration, { stateSchema: this.ctx.stateSchema });
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
  async expand(options: { signal?: AbortSignal } & TransitionOptions = {}): Promise<TransitionDecision> {
    return this.transition('expand', {}, {
      cause: options.cause,
      before: async (r, row) => {
        // Remember before the DDL whether this migration creates the column, so that a crash between the two
        // cannot make rollback think the user made it (and leave it behind) — or drop a column the user made.
        if (!r.newColumnExists && !row.created_new_column) await this.store.update(this.id, { created_new_column: true });
        await ops.expand(this.ctx, r, options.signal);
      },
    });
  }

  /** Services write both columns from now on (and the sync trigger covers writers that do not embed phaseflag). */
  async startDualWrite(options: TransitionOptions = {}): Promise<TransitionDecision> {
    return this.transition('dual-write', {}, {
      cause: options.cause,
      before: async (r) => {
        if (this.migration.sync.trigger) await ops.installSync(this.ctx, r);
      },
    });
  }

  async stopDualWrite(options: TransitionOptions = {}): Promise<TransitionDecision> {
    return this.transition('stop-dual-write', {}, { cause: options.cause, after: async (r) => ops.dropSync(this.ctx, r) });
  }

  /**
   * Starts (from dual-write), resumes (from paused or an interrupted run) and runs the backfill until it
   * completes, the signal aborts it, or the phase changes under it (pause, rollback). On completion the phase
   * moves to `backfilled`.
   */
  async backfill(options: BackfillOptions = {}): Promise<ops.BackfillResult & { phase: Phase }> {
    await this.startBackfill(options);
    const r = await this.resolve();
    await ops.prepareBackfill(this.ctx, r, { workers: options.batch?.workers ?? this.migration.batch.workers });
    return this.runResolved(r, options);
  }

  /**
   * Runs (or resumes) the backfill of a migration that is in `backfilling`, without moving the phase there: in
   * any other phase it touches nothing and returns. On completion the phase moves to `backfilled`. This is what
   * a controller runs in the background after `startBackfill()`, so a pause in between is never undone.
   */
  async runBackfill(options: BackfillOptions = {}): Promise<ops.BackfillResult & { phase: Phase }> {
    return this.runResolved(await this.resolve(), options);
  }

  private async runResolved(r: ResolvedMigration, options: BackfillOptions): Promise<ops.BackfillResult & { phase: Phase }> {
    const result = await ops.runBackfill(this.ctx, r, options);
    let row = (await this.store.get(this.id))!;
    if (result.completed && row.phase === 'backfilling') {
      await this.transition('complete-backfill', {}, { cause: options.cause, extra: { backfill_completed_at: this.ctx.knex.fn.now() } });
      row = (await this.store.get(this.id))!;
    }
    return { ...result, phase: row.phase };
  }

  /**
   * The phase change of `backfill()` without running it: dual-write → backfilling (ranges bounded now), or
   * paused → backfilling; nothing to do in backfilling. A controller runs the backfill afterwards, in the
   * background, so that it can pause it by flag meanwhile.
   */
  async startBackfill(options: Pick<BackfillOptions, 'batch' | 'cause'> = {}): Promise<void> {
    const row = await this.store.get(this.id);
    if (row?.phase === 'dual-write' || row === null) {
      await this.transition('backfill', {}, {
        cause: options.cause,
        before: async (r) => {
          await ops.prepareBackfill(this.ctx, r, { workers: options.batch?.workers ?? this.migration.batch.workers });
        },
        extra: { backfill_started_at: this.ctx.knex.fn.now() },
      });
    } else if (row.phase === 'paused') {
      await this.resume({ cause: options.cause });
    } else if (row.phase !== 'backfilling') {
      await this.refuse('backfill', row.phase, `the backfill runs from dual-write, paused or backfilling, not from ${row.phase}`, 'Start dual-write first.');
    }
  }

  /** Pauses a running backfill: the runner stops after its current batch (it checks the phase in every batch). */
  pause(options: TransitionOptions = {}): Promise<TransitionDecision> {
    return this.transition('pause', {}, { cause: options.cause });
  }

  resume(options: TransitionOptions = {}): Promise<TransitionDecision> {
    return this.transition('resume', {}, { cause: options.cause });
  }

  /**
   * Changes the backfill's runtime knobs (fixed batch size, operator throttle, delay between batches), from any
   * process: a running runner applies them before its next batch (gh-ost's interactive `chunk-size=`, `throttle`).
   * null gives a knob back to the migration's settings. Recorded as an event; kept until rollback.
   */
  setBackfillKnobs(patch: BackfillKnobsPatch): Promise<BackfillKnobs> {
    return setBackfillKnobs(this.ctx, this.id, patch);
  }

  /** The backend running this migration's backfill now, in any process, or null. */
  backfillRunner(): Promise<BackfillRunner | null> {
    return findBackfillRunner(this.ctx.knex, this.id);
  }

  backfillKnobs(): Promise<BackfillKnobs> {
    return readBackfillKnobs(this.ctx.knex, this.ctx.stateSchema, this.id);
  }

  /**
   * Proves, for every row, that the new column equals the backfill expression; only a clean run moves the
   * phase to `verified`. A dirty run is recorded with sample keys and throws PF_VERIFY_FAILED.
   */
  async verify(options: { batchSize?: number; signal?: AbortSignal } & TransitionOptions = {}): Promise<ops.VerifyResult> {
    const row = await this.store.get(this.id);
    const phase = row?.phase ?? 'pending';
    if (phase !== 'backfilled' && phase !== 'verified' && phase !== 'read-new') {
      await this.refuse('verify', phase, `verify runs once the backfill is complete, not in ${phase}`, 'Run the backfill to completion first.');
    }
    const r = await this.resolve();
    const result = await ops.verify(this.ctx, r, { batchSize: options.batchSize, signal: options.signal });
    if (!result.complete && result.mismatches === 0) {
      // Aborted part-way with nothing wrong seen: not a result. Recording it as a failed verify would make it
      // look dirty (and a controller would wait for a human); the next run starts afresh.
      await this.store.recordEvent({ migration_id: this.id, kind: 'verify', action: 'verify', from_phase: phase, to_phase: null, reason: `aborted after ${result.rowsChecked} rows`, detail: null });
      throw options.signal?.reason ?? new Error(`verify of "${this.id}" was aborted`);
    }
    const stored = { clean: result.clean, mismatches: result.mismatches, rowsChecked: result.rowsChecked, sampleKeys: result.sampleKeys.slice(0, 20) };
    await this.store.update(this.id, { verify_result: JSON.stringify(stored), verified_at: this.ctx.knex.fn.now() });
    await this.store.recordEvent({ migration_id: this.id, kind: 'verify', action: 'verify', from_phase: phase, to_phase: null, reason: result.clean ? 'clean' : `${result.mismatches} mismatches`, detail: stored });
    if (!result.clean) {
      if (phase === 'backfilled') {
        await this.transition('verify', {}, { cause: options.cause }).catch((e) => {
          if (!(e instanceof GuardRefusedError)) throw e;
        });
      }
      throw new VerifyFailedError('PF_VERIFY_FAILED', `Verify of "${this.id}" found ${result.mismatches} row(s) whose ${this.migration.newColumn.name} differs from the backfill expression.`, {
        value: { mismatches: result.mismatches, sampleKeys: result.sampleKeys.slice(0, 10) }, migrationId: this.id,
        hint: 'Find what wrote those rows around dual-write (a writer without the trigger or router?), then run backfill and verify again.',
      });
    }
    if (phase === 'backfilled') await this.transition('verify', {}, { cause: options.cause });
    return result;
  }

  /** Allows reads of the new column (each request still asks the read-new flag). */
  readNew(options: TransitionOptions = {}): Promise<TransitionDecision> {
    return this.transition('read-new', {}, { cause: options.cause });
  }

  /** Sends every read back to the old column. */
  readOld(options: TransitionOptions = {}): Promise<TransitionDecision> {
    return this.transition('read-old', {}, { cause: options.cause });
  }

  /**
   * Stops writing the old column and enforces the new column's constraints; drops the old column when asked.
   * Irreversible: needs `confirm: true`.
   */
  async contract(options: { confirm?: boolean; dropOldColumn?: boolean; signal?: AbortSignal } & TransitionOptions = {}): Promise<TransitionDecision> {
    return this.transition('contract', { confirmed: options.confirm === true }, {
      cause: options.cause,
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
  async rollback(options: { dropNewColumn?: boolean; signal?: AbortSignal } & TransitionOptions = {}): Promise<TransitionDecision> {
    return this.transition('rollback', {}, {
      cause: options.cause,
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

  /**
   * The guard facts as a transition would read them now (outside its lock), with every instance that ever
   * reported, live or not. A controller decides from these; the transition re-reads them under its lock.
   */
  async inspect(): Promise<{ row: MigrationRow; facts: GuardFacts; instances: InstanceRow[] }> {
    const r = await this.resolve();
    const row = await this.registerResolved(r);
    const [facts, instances] = await Promise.all([this.facts(row, r, {}), this.store.instances(this.id, this.pf.instanceTtlMs)]);
    return { row, facts, instances };
  }

  /**
   * Records a refusal decided outside a transition (a controller declining what a flag asks for): an event, a
   * `phaseflag.transition.refused` span carrying the reason and the cause's attributes and links, the refusal
   * metric and one warning. Refusing is expected there, so this returns instead of throwing.
   */
  async recordRefusal(action: Action, phase: Phase, reason: string, hint: string, cause: TransitionCause = {}, options: { logger?: Logger } = {}): Promise<void> {
    await recordRefusal(this.ctx, this.store, { migrationId: this.id, action, phase, reason, hint, cause }, { span: true, logger: options.logger });
  }

  private async refuse(action: Action, phase: Phase, reason: string, hint: string, code?: RefusalCode): Promise<never> {
    const refusal = { migrationId: this.id, action, phase, reason, hint };
    await recordRefusal(this.ctx, this.store, refusal, { span: true, tolerateStoreFailure: true });
    throw refusalError(refusal, code);
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
      cause?: TransitionCause;
    } = {},
  ): Promise<TransitionDecision> {
    const cause = effects.cause;
    return this.ctx.tracer.startActiveSpan(SPAN.transition, { links: cause?.links ?? [], attributes: cause?.attributes ?? {} }, async (span: Span) => {
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
            await this.refuseRecorded(action, decision.from, decision.reason, decision.hint, code, cause);
          }
          await effects.before?.(r, row);
          await this.ctx.knex.transaction((trx) => this.store.recordTransition(trx, {
            id: this.id, from: decision.from, to: decision.to, version: row.version, action, extra: effects.extra, detail: cause?.detail,
          }));
          this.ctx.meter.createCounter(METRIC.transitions).add(1, { [ATTR.action]: action });
          this.ctx.logger.info(`phaseflag: ${this.id}: ${decision.from} → ${decision.to}`, { migrationId: this.id, action });
          this.announce(cause, { action, from: decision.from, to: decision.to, at: new Date(this.ctx.clock.now()) });
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

  /** The phase change is committed: a listener's bug must not skip what follows it (contract's drops). */
  private announce(cause: TransitionCause | undefined, applied: Parameters<NonNullable<TransitionCause['onApplied']>>[0]): void {
    try {
      cause?.onApplied?.(applied);
    } catch (error) {
      this.ctx.logger.error(`phaseflag: ${this.id}: onApplied threw: ${(error as Error)?.message ?? error}`, { migrationId: this.id });
    }
  }

  /** Records a refusal seen inside a transition span (which already carries its name and reason). */
  private async refuseRecorded(action: Action, phase: Phase, reason: string, hint: string, code?: RefusalCode, cause?: TransitionCause): Promise<never> {
    const refusal = { migrationId: this.id, action, phase, reason, hint, cause };
    await recordRefusal(this.ctx, this.store, refusal, { span: false });
    throw refusalError(refusal, code);
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
