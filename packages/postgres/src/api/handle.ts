import type { Action, FlagSource, Logger, Migration, Phase, PhaseSnapshot, TransitionDecision } from '@phaseflag/core';
import type { ResolvedMigration } from '../catalog/resolved.js';
import type { ExecutorContext } from '../context.js';
import type { PostgresStateStore } from '../store/state-store.js';
import { findBackfillRunner, type BackfillRunner } from '../operations/backfill/holder.js';
import { readBackfillKnobs, setBackfillKnobs } from '../operations/backfill/knobs.js';
import type { BackfillKnobs, BackfillKnobsPatch } from '../operations/backfill/knobs.js';
import { inspectDrift } from '../operations/drift/inspect.js';
import type { DriftReport } from '../operations/drift/types.js';
import { planMigration, type MigrationPlan, type PlanOptions } from '../operations/plan.js';
import { runPreflight, type PreflightOptions, type PreflightResult } from '../operations/preflight.js';
import type { VerifyResult } from '../operations/verify.js';
import { KnexRouter, type KnexRouterOptions } from '../router/knex-router.js';
import { toMigrationRecord } from '../transitions/records.js';
import { backfill, runBackfill, startBackfill } from '../transitions/backfill.js';
import { contract } from '../transitions/contract.js';
import { startDualWrite, stopDualWrite } from '../transitions/dual-write.js';
import { expand } from '../transitions/expand.js';
import { inspectMigration, migrationStatus, type MigrationInspection } from '../transitions/facts.js';
import { pause, resume } from '../transitions/pause.js';
import { readNew, readOld, releaseReadHold, type ReadOldOptions } from '../transitions/reads.js';
import { recordRefusal } from '../transitions/refusals.js';
import { registerResolved } from '../transitions/register.js';
import { repair, type RepairResult } from '../transitions/repair.js';
import { rollback } from '../transitions/rollback.js';
import { operatorScope, resolveScope, type MigrationScope } from '../transitions/scope.js';
import { verify } from '../transitions/verify.js';
import type {
  BackfillOptions,
  BackfillRun,
  MigrationRecord,
  MigrationStatus,
  TransitionCause,
  TransitionOptions,
} from '../types.js';

/**
 * What a handle is built from: the migration's scope (the operator side), the service side (routers and watching, on
 * the application's knex), and where its routers are tracked (closed with the Phaseflag).
 */
export interface HandleDeps extends Omit<MigrationScope, 'id' | 'migration'> {
  readonly service: { readonly ctx: ExecutorContext; readonly store: PostgresStateStore };
  /** Tracks a router until it closes; returns the untrack function. */
  readonly trackRouter: (router: KnexRouter) => () => void;
}

/**
 * One declared migration on one database, from `Phaseflag.migration()`: every phase change a person or a
 * controller asks for. The bodies live in ../transitions/ (one file per action, and the runner they share);
 * this class is the public surface that delegates to them.
 */
export class MigrationHandle {
  readonly id: string;
  readonly #scope: MigrationScope;
  readonly #trackRouter: HandleDeps['trackRouter'];
  readonly #service: MigrationScope;

  /** @internal Made by `Phaseflag.migration()`. */
  constructor(
    deps: HandleDeps,
    readonly migration: Migration,
  ) {
    this.id = migration.id;
    const { trackRouter, service, ...rest } = deps;
    this.#scope = { ...rest, id: migration.id, migration };
    this.#service = { ...this.#scope, ctx: service.ctx, store: service.store };
    this.#trackRouter = trackRouter;
  }

  /** Checks the declaration against the live catalog: a typed error, and nothing changed, when it does not fit. */
  resolve(): Promise<ResolvedMigration> {
    return resolveScope(this.#scope);
  }

  /** The SQL of every phase with the lock each statement takes; nothing runs. `dropOldColumn`: contract's drop. */
  plan(options: PlanOptions = {}): Promise<MigrationPlan> {
    return planMigration(this.#scope.ctx, this.migration, options);
  }

  /** Registers the migration in the state store (phase `pending`) after checking it against the catalog. */
  async register(): Promise<MigrationRecord> {
    return toMigrationRecord(await registerResolved(this.#scope, await this.resolve()));
  }

  /**
   * Where the migration stands, read-only: its record, backfill progress, instances, the last events and the rows
   * the expression cannot derive. Throws PF_UNKNOWN_MIGRATION when the store does not know it yet.
   */
  status(): Promise<MigrationStatus> {
    return migrationStatus(this.#scope);
  }

  /**
   * The table against what the phase implies: each difference with its repair, and the DDL recorded on the table
   * that nobody acknowledged (DriftReport). Reads only. A controller refuses to advance while `blocking` (PF_DRIFT).
   */
  drift(): Promise<DriftReport> {
    return inspectDrift(this.#scope, this.migration);
  }

  /** Calls `listener` on each phase change, from any process (LISTEN/NOTIFY, polling behind); returns unwatch. */
  watch(listener: (snapshot: PhaseSnapshot) => void): () => void {
    return this.#service.store.watchPhase(this.id, listener);
  }

  // ---- transitions -------------------------------------------------------------------------------------------

  /** Adds the new column online (and its index and check), then moves to `expanded`. */
  async expand(options: { signal?: AbortSignal } & TransitionOptions = {}): Promise<TransitionDecision> {
    return expand(await operatorScope(this.#scope, 'expand', options), options);
  }

  /**
   * Services write both columns from now on (and the sync trigger covers writers that do not embed phaseflag).
   * First runs the preflight over the existing rows and refuses (PF_PREFLIGHT_FAILED) while some cannot be
   * derived by the backfill expression, unless `acceptPreflightFailures: true`: those rows are then recorded, left
   * NULL in the new column by the backfill, and block verified until fixed.
   */
  async startDualWrite(
    options: { acceptPreflightFailures?: boolean } & TransitionOptions = {},
  ): Promise<TransitionDecision> {
    return startDualWrite(await operatorScope(this.#scope, 'start dual-write of', options), options);
  }

  /**
   * Evaluates the backfill expression and the reverse round trip over the existing rows (read only) and reports
   * every row that fails or does not come back; nothing is recorded or changed (the result is stored as the last
   * preflight when the migration is registered).
   */
  async preflight(options: Omit<PreflightOptions, 'record'> = {}): Promise<PreflightResult> {
    const { ctx, store } = this.#scope;
    const result = await runPreflight(ctx, await this.resolve(), { ...options, record: false });
    // Kept as the last preflight where the store knows the migration; a plan before install changes nothing.
    if (await store.get(this.id).catch(() => null))
      await store.update(this.id, { preflight_result: JSON.stringify(result) });
    return result;
  }

  async stopDualWrite(options: TransitionOptions = {}): Promise<TransitionDecision> {
    return stopDualWrite(await operatorScope(this.#scope, 'stop dual-write of', options), options);
  }

  /**
   * Starts (from dual-write), resumes (from paused or an interrupted run) and runs the backfill until it
   * completes, the signal aborts it, or the phase changes under it (pause, rollback). On completion the phase
   * moves to `backfilled`.
   */
  async backfill(options: BackfillOptions = {}): Promise<BackfillRun> {
    return backfill(await operatorScope(this.#scope, 'backfill'), options);
  }

  /**
   * Runs (or resumes) the backfill of a migration that is in `backfilling`, without moving the phase there: in
   * any other phase it touches nothing and returns. On completion the phase moves to `backfilled`. This is what
   * a controller runs in the background after `startBackfill()`, so a pause in between is never undone.
   */
  async runBackfill(options: BackfillOptions = {}): Promise<BackfillRun> {
    return runBackfill(await operatorScope(this.#scope, 'backfill'), options);
  }

  /**
   * The phase change of `backfill()` without running it: dual-write → backfilling (ranges bounded now), or
   * paused → backfilling; nothing to do in backfilling. A controller runs the backfill afterwards, in the
   * background, so that it can pause it by flag meanwhile.
   */
  async startBackfill(options: Pick<BackfillOptions, 'batch' | 'cause'> = {}): Promise<void> {
    return startBackfill(await operatorScope(this.#scope, 'backfill'), options);
  }

  /** Pauses a running backfill: the runner stops after its current batch (it checks the phase in every batch). */
  async pause(options: TransitionOptions = {}): Promise<TransitionDecision> {
    return pause(await operatorScope(this.#scope, 'pause'), options);
  }

  async resume(options: TransitionOptions = {}): Promise<TransitionDecision> {
    return resume(await operatorScope(this.#scope, 'resume'), options);
  }

  /**
   * Changes the backfill's runtime knobs (fixed batch size, operator throttle, delay between batches), from any
   * process: a running runner applies them before its next batch (gh-ost's interactive `chunk-size=`, `throttle`).
   * null gives a knob back to the migration's settings. Recorded as an event; kept until rollback.
   */
  setBackfillKnobs(patch: BackfillKnobsPatch): Promise<BackfillKnobs> {
    return setBackfillKnobs(this.#scope.ctx, this.id, patch);
  }

  /** The backend running this migration's backfill now, in any process, or null. */
  backfillRunner(): Promise<BackfillRunner | null> {
    return findBackfillRunner(this.#scope.ctx.knex, this.#scope.ctx.stateSchema, this.id);
  }

  backfillKnobs(): Promise<BackfillKnobs> {
    return readBackfillKnobs(this.#scope.ctx.knex, this.#scope.ctx.stateSchema, this.id);
  }

  /**
   * Proves, for every row, that the new column equals the backfill expression; only a clean run moves the
   * phase to `verified`. A dirty run is recorded with sample keys and throws PF_VERIFY_FAILED.
   */
  async verify(options: { batchSize?: number; signal?: AbortSignal } & TransitionOptions = {}): Promise<VerifyResult> {
    return verify(await operatorScope(this.#scope, 'verify'), options);
  }

  /**
   * The way out of a failed verify: re-derives, by key and in batches, the rows whose new column differs from the
   * backfill expression (backfilled → backfilling → backfilled, recorded as action `repair`), then verifies again;
   * a clean verify moves the phase to `verified`. Fix what wrote those rows first. Throws PF_VERIFY_FAILED when
   * rows went wrong again meanwhile; resumes a repair that was cut short.
   */
  async repair(options: BackfillOptions & { verifyBatchSize?: number } = {}): Promise<RepairResult> {
    return repair(await operatorScope(this.#scope, 'repair'), options);
  }

  /** Allows reads of the new column (each request still asks the read-new flag); releases a read-old hold. */
  async readNew(options: TransitionOptions = {}): Promise<TransitionDecision> {
    return readNew(await operatorScope(this.#scope, 'read-new'), options);
  }

  /**
   * The emergency lever: sends every read back to the old column (read-new → verified), whatever the read-new
   * flag says, and holds them there: a controller does not move back to read-new until the flag has been seen
   * off (then on again), or `readNew()` is called.
   */
  async readOld(options: ReadOldOptions = {}): Promise<TransitionDecision> {
    return readOld(await operatorScope(this.#scope, 'read-old'), options);
  }

  /** Releases the hold `readOld()` placed, if the migration is still at `version`; true when one was released. */
  async releaseReadHold(options: TransitionOptions & { version: number }): Promise<boolean> {
    return releaseReadHold(await operatorScope(this.#scope, 'release the read hold of'), options);
  }

  /**
   * Stops writing the old column and enforces the new column's constraints; drops the old column when asked.
   * Irreversible: needs `confirm: true`.
   */
  async contract(
    options: { confirm?: boolean; dropOldColumn?: boolean; signal?: AbortSignal } & TransitionOptions = {},
  ): Promise<TransitionDecision> {
    return contract(await operatorScope(this.#scope, 'contract', options), options);
  }

  /**
   * Abandons the migration from any phase before contracted: reads and writes go back to the old column at
   * once (the phase changes first), then, after the grace period, the trigger, index, check and — if this
   * migration created it — the new column are dropped. Expand may start it again afterwards.
   */
  async rollback(
    options: { dropNewColumn?: boolean; signal?: AbortSignal } & TransitionOptions = {},
  ): Promise<TransitionDecision> {
    return rollback(await operatorScope(this.#scope, 'roll back', options), options);
  }

  /**
   * A router for application code, kept on the current phase through LISTEN/NOTIFY and polling. With `replica`,
   * its reads switch only once that replica has replayed past the verified position (see KnexRouterOptions).
   */
  async router(flags: FlagSource, options: KnexRouterOptions = {}): Promise<KnexRouter> {
    // The service side: the application's knex, which may reach Postgres through a transaction pooler.
    const { ctx, store } = this.#service;
    const router = new KnexRouter(
      { knex: ctx.knex, store, logger: ctx.logger, meter: ctx.meter, track: this.#trackRouter },
      await resolveScope(this.#service),
      flags,
      options,
    );
    await router.ready();
    return router;
  }

  /**
   * The guard facts as a transition would read them now (outside its lock), with every instance that ever
   * reported, live or not. A controller decides from these; the transition re-reads them under its lock.
   * Registers the migration first, unless `register: false`: then it only reads (a migration the store does not
   * know is reported `pending`), as `status()` does.
   */
  inspect(options: { register?: boolean } = {}): Promise<MigrationInspection> {
    return inspectMigration(this.#scope, options);
  }

  /**
   * Records a refusal decided outside a transition (a controller declining what a flag asks for): an event, a
   * `phaseflag.transition.refused` span carrying the reason and the cause's attributes and links, the refusal
   * metric and one warning. Refusing is expected there, so this returns instead of throwing.
   */
  async recordRefusal(
    action: Action,
    phase: Phase,
    reason: string,
    hint: string,
    cause: TransitionCause = {},
    options: { logger?: Logger } = {},
  ): Promise<void> {
    const refusal = { migrationId: this.id, action, phase, reason, hint, cause };
    await recordRefusal(this.#scope.ctx, this.#scope.store, refusal, { span: true, logger: options.logger });
  }
}
