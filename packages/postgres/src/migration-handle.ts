import type { Attributes, Link } from '@opentelemetry/api';
import type { Action, FlagSource, GuardFacts, Logger, Migration, MigrationInput, Phase, TransitionDecision } from '@phaseflag/core';
import { resolveMigration } from './catalog.js';
import type { Phaseflag } from './engine.js';
import { KnexRouter, type KnexRouterOptions } from './knex-router.js';
import * as ops from './operations.js';
import { recordRefusal } from './refusals.js';
import type { ResolvedMigration } from './resolved.js';
import type { EventRow, InstanceRow, MigrationRow } from './store/state-store.js';
import { findBackfillRunner, type BackfillRunner } from './backfill/holder.js';
import { readBackfillKnobs, setBackfillKnobs, type BackfillKnobs, type BackfillKnobsPatch } from './backfill/knobs.js';
import * as backfillActions from './handle/backfill-actions.js';
import { inspectMigration, migrationStatus } from './handle/inspection.js';
import * as phaseActions from './handle/phase-actions.js';
import * as readHold from './handle/read-hold.js';
import { registerResolved } from './handle/registration.js';
import { runTransition } from './handle/transition.js';
import { verify } from './handle/verify-action.js';
import { repair, type RepairResult } from './handle/repair-action.js';
import type { UnderivableSummary } from './underivable/store.js';
import { runPreflight, type PreflightOptions, type PreflightResult } from './preflight.js';

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
  /** Rows the backfill expression cannot derive: how many are recorded, and the first ones (key, old value, error). */
  underivable: UnderivableSummary;
}

/**
 * One declared migration on one database, from `Phaseflag.migration()`: every phase change a person or a
 * controller asks for. The bodies live in ./handle/ (transition runner, schema-changing transitions, backfill,
 * verify, inspection); this class is the public surface that delegates to them.
 */
export class MigrationHandle {
  readonly id: string;

  constructor(readonly pf: Phaseflag, readonly migration: Migration) {
    this.id = migration.id;
  }

  /**
   * Checks the declaration against the live catalog; throws a typed error and changes nothing when it does not
   * fit. A missing old column fits only once the migration is contracted with the drop recorded in the store.
   */
  resolve(): Promise<ResolvedMigration> {
    return resolveMigration(this.pf.ctx.knex, this.migration, { stateSchema: this.pf.ctx.stateSchema });
  }

  /** The exact SQL of every phase with the lock each statement takes; nothing is executed. */
  async plan(): Promise<ops.MigrationPlan> {
    return ops.plan(this.pf.ctx, this.migration);
  }

  /** Registers the migration in the state store (phase `pending`) after checking it against the catalog. */
  async register(): Promise<MigrationRow> {
    const r = await this.resolve();
    return registerResolved(this, r);
  }

  async status(): Promise<MigrationStatus> {
    return migrationStatus(this);
  }

  // ---- transitions -------------------------------------------------------------------------------------------

  /** Adds the new column online (and its index and check), then moves to `expanded`. */
  async expand(options: { signal?: AbortSignal } & TransitionOptions = {}): Promise<TransitionDecision> {
    return phaseActions.expand(this, options);
  }

  /**
   * Services write both columns from now on (and the sync trigger covers writers that do not embed phaseflag).
   * First runs the preflight over the existing rows and refuses (PF_PREFLIGHT_FAILED) while some cannot be
   * derived by the backfill expression, unless `acceptPreflightFailures: true`: those rows are then recorded, left
   * NULL in the new column by the backfill, and block verified until fixed.
   */
  async startDualWrite(options: { acceptPreflightFailures?: boolean } & TransitionOptions = {}): Promise<TransitionDecision> {
    return phaseActions.startDualWrite(this, options);
  }

  /**
   * Evaluates the backfill expression and the reverse round trip over the existing rows (read only) and reports
   * every row that fails or does not come back; nothing is recorded or changed (the result is stored as the last
   * preflight when the migration is registered).
   */
  async preflight(options: Omit<PreflightOptions, 'record'> = {}): Promise<PreflightResult> {
    const r = await this.resolve();
    const result = await runPreflight(this.pf.ctx, r, { ...options, record: false });
    // Kept as the last preflight where the store knows the migration; a plan before install changes nothing.
    if (await this.pf.store.get(this.id).catch(() => null)) await this.pf.store.update(this.id, { preflight_result: JSON.stringify(result) });
    return result;
  }

  async stopDualWrite(options: TransitionOptions = {}): Promise<TransitionDecision> {
    return phaseActions.stopDualWrite(this, options);
  }

  /**
   * Starts (from dual-write), resumes (from paused or an interrupted run) and runs the backfill until it
   * completes, the signal aborts it, or the phase changes under it (pause, rollback). On completion the phase
   * moves to `backfilled`.
   */
  async backfill(options: BackfillOptions = {}): Promise<ops.BackfillResult & { phase: Phase }> {
    return backfillActions.backfill(this, options);
  }

  /**
   * Runs (or resumes) the backfill of a migration that is in `backfilling`, without moving the phase there: in
   * any other phase it touches nothing and returns. On completion the phase moves to `backfilled`. This is what
   * a controller runs in the background after `startBackfill()`, so a pause in between is never undone.
   */
  async runBackfill(options: BackfillOptions = {}): Promise<ops.BackfillResult & { phase: Phase }> {
    return backfillActions.runBackfill(this, options);
  }

  /**
   * The phase change of `backfill()` without running it: dual-write → backfilling (ranges bounded now), or
   * paused → backfilling; nothing to do in backfilling. A controller runs the backfill afterwards, in the
   * background, so that it can pause it by flag meanwhile.
   */
  async startBackfill(options: Pick<BackfillOptions, 'batch' | 'cause'> = {}): Promise<void> {
    return backfillActions.startBackfill(this, options);
  }

  /** Pauses a running backfill: the runner stops after its current batch (it checks the phase in every batch). */
  pause(options: TransitionOptions = {}): Promise<TransitionDecision> {
    return runTransition(this, 'pause', {}, { cause: options.cause });
  }

  resume(options: TransitionOptions = {}): Promise<TransitionDecision> {
    return runTransition(this, 'resume', {}, { cause: options.cause });
  }

  /**
   * Changes the backfill's runtime knobs (fixed batch size, operator throttle, delay between batches), from any
   * process: a running runner applies them before its next batch (gh-ost's interactive `chunk-size=`, `throttle`).
   * null gives a knob back to the migration's settings. Recorded as an event; kept until rollback.
   */
  setBackfillKnobs(patch: BackfillKnobsPatch): Promise<BackfillKnobs> {
    return setBackfillKnobs(this.pf.ctx, this.id, patch);
  }

  /** The backend running this migration's backfill now, in any process, or null. */
  backfillRunner(): Promise<BackfillRunner | null> {
    return findBackfillRunner(this.pf.ctx.knex, this.id);
  }

  backfillKnobs(): Promise<BackfillKnobs> {
    return readBackfillKnobs(this.pf.ctx.knex, this.pf.ctx.stateSchema, this.id);
  }

  /**
   * Proves, for every row, that the new column equals the backfill expression; only a clean run moves the
   * phase to `verified`. A dirty run is recorded with sample keys and throws PF_VERIFY_FAILED.
   */
  async verify(options: { batchSize?: number; signal?: AbortSignal } & TransitionOptions = {}): Promise<ops.VerifyResult> {
    return verify(this, options);
  }

  /**
   * The way out of a failed verify: re-derives, by key and in batches, the rows whose new column differs from the
   * backfill expression (backfilled → backfilling → backfilled, recorded as action `repair`), then verifies again;
   * a clean verify moves the phase to `verified`. Fix what wrote those rows first. Throws PF_VERIFY_FAILED when
   * rows went wrong again meanwhile; resumes a repair that was cut short.
   */
  repair(options: BackfillOptions & { verifyBatchSize?: number } = {}): Promise<RepairResult> {
    return repair(this, options);
  }

  /** Allows reads of the new column (each request still asks the read-new flag); releases a read-old hold. */
  readNew(options: TransitionOptions = {}): Promise<TransitionDecision> {
    return readHold.readNew(this, options);
  }

  /**
   * The emergency lever: sends every read back to the old column (read-new → verified), whatever the read-new
   * flag says, and holds them there: a controller does not move back to read-new until the flag has been seen
   * off (then on again), or `readNew()` is called.
   */
  readOld(options: readHold.ReadOldOptions = {}): Promise<TransitionDecision> {
    return readHold.readOld(this, options);
  }

  /** Releases the hold `readOld()` placed, if the migration is still at `version`; true when one was released. */
  releaseReadHold(options: TransitionOptions & { version: number }): Promise<boolean> {
    return readHold.releaseReadHold(this, options);
  }

  /**
   * Stops writing the old column and enforces the new column's constraints; drops the old column when asked.
   * Irreversible: needs `confirm: true`.
   */
  async contract(options: { confirm?: boolean; dropOldColumn?: boolean; signal?: AbortSignal } & TransitionOptions = {}): Promise<TransitionDecision> {
    return phaseActions.contract(this, options);
  }

  /**
   * Abandons the migration from any phase before contracted: reads and writes go back to the old column at
   * once (the phase changes first), then, after the grace period, the trigger, index, check and — if this
   * migration created it — the new column are dropped. Expand may start it again afterwards.
   */
  async rollback(options: { dropNewColumn?: boolean; signal?: AbortSignal } & TransitionOptions = {}): Promise<TransitionDecision> {
    return phaseActions.rollback(this, options);
  }

  /** A router for application code, kept on the current phase through LISTEN/NOTIFY and polling. */
  async router(flags: FlagSource, options: KnexRouterOptions = {}): Promise<KnexRouter> {
    const r = await this.resolve();
    const router = new KnexRouter(this.pf, r, flags, options);
    await router.ready();
    return router;
  }

  /**
   * The guard facts as a transition would read them now (outside its lock), with every instance that ever
   * reported, live or not. A controller decides from these; the transition re-reads them under its lock.
   */
  async inspect(): Promise<{ row: MigrationRow; facts: GuardFacts; instances: InstanceRow[] }> {
    return inspectMigration(this);
  }

  /**
   * Records a refusal decided outside a transition (a controller declining what a flag asks for): an event, a
   * `phaseflag.transition.refused` span carrying the reason and the cause's attributes and links, the refusal
   * metric and one warning. Refusing is expected there, so this returns instead of throwing.
   */
  async recordRefusal(action: Action, phase: Phase, reason: string, hint: string, cause: TransitionCause = {}, options: { logger?: Logger } = {}): Promise<void> {
    await recordRefusal(this.pf.ctx, this.pf.store, { migrationId: this.id, action, phase, reason, hint, cause }, { span: true, logger: options.logger });
  }
}
