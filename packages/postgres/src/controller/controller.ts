import { randomUUID } from 'node:crypto';
import { context, ROOT_CONTEXT, SpanStatusCode } from '@opentelemetry/api';
import {
  ATTR,
  CONTROLLER_ATTR,
  CONTROLLER_SPAN,
  decideNext,
  parseControllerSettings,
  PHASE_FLAGS,
  type Logger,
  type PhaseFlag,
  type PhaseFlagStates,
} from '@phaseflag/core';
import type { TransitionCause } from '../types.js';
import { stepCause } from './cause.js';
import { refusedForDrift, reportRefusal } from './drift-gate.js';
import { eventSink, type ControllerEvent } from './events.js';
import { FlagObserver } from './flags.js';
import { assertSessionConnection } from '../driver/pooler.js';
import { LeaderLocks, type LeaderInfo } from './leader.js';
import { performStep, type ActStep } from './perform.js';
import { startBackfillRunner } from './runner.js';
import { reportInstances, track, type Tracked } from './tracked.js';
import type { ControlledMigration, ControllerDeps, ControllerMigrationStatus, ControllerOptions } from './types.js';

export type { ControlledMigration, ControllerDeps, ControllerMigrationStatus, ControllerOptions } from './types.js';

/**
 * Reconciles flags (intent) with Postgres (truth) for one or more migrations. Any number of service instances
 * (and the CLI) may run one; per migration, the one holding the leadership lock acts and the others wait. The
 * leader performs the next step `decideNext()` allows, runs the backfill in the background, verifies when it
 * completes, and records each refusal once. It reacts to the flag source's change events, to phase changes
 * (LISTEN/NOTIFY through the state store's watcher) and re-checks every `intervalMs`.
 */
export class Controller {
  readonly instanceId: string;
  readonly intervalMs: number;
  private readonly dropOldColumn: boolean;
  private readonly logger: Logger;
  private readonly emit: (event: ControllerEvent) => void;
  private readonly tracked = new Map<string, Tracked>();
  private readonly leaders: LeaderLocks;
  private readonly stopSignal = new AbortController();
  private readonly unsubscribe: Array<() => void> = [];
  private timer: NodeJS.Timeout | undefined;
  private started = false;
  private stopping: Promise<void> | undefined;
  /** Every backfill runner running now, until it has ended: stop() waits for them all. */
  private readonly runners = new Set<Promise<void>>();

  /** @internal Made by `Phaseflag.controller()`. */
  constructor(
    private readonly deps: ControllerDeps,
    handles: readonly ControlledMigration[],
    private readonly options: ControllerOptions,
  ) {
    const settings = parseControllerSettings({
      instanceId: options.instanceId,
      intervalMs: options.intervalMs,
      dropOldColumn: options.dropOldColumn,
    });
    if (!options.flags || typeof options.flags.isEnabled !== 'function') {
      throw new TypeError(
        'Controller: options.flags must be a FlagSource (isEnabled(flag, context), optional state() and onChange()).',
      );
    }
    this.instanceId =
      settings.instanceId ?? `${process.env.HOSTNAME ?? 'host'}-${process.pid}-${randomUUID().slice(0, 8)}`;
    this.intervalMs = settings.intervalMs;
    this.dropOldColumn = settings.dropOldColumn;
    this.logger = options.logger ?? deps.ctx.logger;
    this.emit = eventSink(options.onEvent, this.logger);
    this.leaders = new LeaderLocks(deps.ctx, {
      instanceId: this.instanceId,
      onLost: (ids, why) => this.lost(ids, why),
    });
    for (const handle of handles) {
      const flags = new FlagObserver(handle.migration, options.flags, deps.ctx.tracer, this.logger, this.instanceId);
      this.tracked.set(handle.id, track(handle, flags));
    }
  }

  /** Starts listening (flag changes, phase changes, the interval) and runs a first pass. */
  async start(): Promise<void> {
    if (this.started) return;
    // Leadership is a session lock: PF_TRANSACTION_POOLER now, from start(), not as a logged error every pass.
    await assertSessionConnection(this.deps.ctx.knex, 'run a controller');
    this.started = true;
    const byFlag = new Map<string, Tracked[]>();
    for (const t of this.tracked.values()) {
      for (const flag of PHASE_FLAGS) {
        const name = t.handle.migration.flags[flag];
        byFlag.set(name, [...(byFlag.get(name) ?? []), t]);
      }
      this.unsubscribe.push(t.handle.watch(() => void this.request(t)));
    }
    if (this.options.flags.onChange) {
      this.unsubscribe.push(
        this.options.flags.onChange((names) => {
          const hit = new Set(names.flatMap((n) => byFlag.get(n) ?? []));
          for (const t of hit) {
            // Seen now, even if the pass has to wait for one in progress: the span marks when the change arrived.
            if (this.leaders.isLeader(t.handle.id)) t.flags.observe(t.leaderSpan?.spanContext());
            void this.request(t);
          }
        }),
      );
    }
    this.timer = setInterval(() => {
      for (const t of this.tracked.values()) void this.request(t);
    }, this.intervalMs);
    await this.reconcile();
  }

  /** One pass over every migration (and whatever passes it triggers), resolved when all have settled. */
  async reconcile(): Promise<ControllerMigrationStatus[]> {
    await Promise.all([...this.tracked.values()].map((t) => this.request(t)));
    return this.status();
  }

  status(): ControllerMigrationStatus[] {
    return [...this.tracked.values()].map((t) => ({
      ...t.status,
      leader: this.leaders.isLeader(t.handle.id),
      backfillRunning: t.runner !== undefined,
    }));
  }

  isLeader(migrationId: string): boolean {
    return this.leaders.isLeader(migrationId);
  }

  /** The backend that leads a migration now (this controller or another process), or null when none does. */
  leaderOf(migrationId: string): Promise<LeaderInfo | null> {
    return this.leaders.holder(migrationId);
  }

  /** Stops acting: aborts running backfills (each stops after its batch), waits for passes, releases leadership. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.stopSignal.abort();
      if (this.timer) clearInterval(this.timer);
      for (const u of this.unsubscribe.splice(0)) u();
      const tracked = [...this.tracked.values()];
      for (const t of tracked) t.runner?.abort.abort();
      // Passes first, then every runner still running, whoever aborted it: none runs a batch once this resolves.
      await Promise.all(tracked.map((t) => t.pass ?? Promise.resolve()));
      for (const t of tracked) t.runner?.abort.abort();
      await Promise.all([...this.runners].map((p) => p.catch(() => undefined)));
      await this.leaders.close();
      for (const t of tracked) this.endLeadership(t, 'stopped');
    })();
    return this.stopping;
  }

  private request(t: Tracked): Promise<void> {
    if (this.stopSignal.signal.aborted) return Promise.resolve();
    if (t.pass) {
      t.again = true;
      return t.pass;
    }
    t.pass = (async () => {
      do {
        t.again = false;
        try {
          await context.with(ROOT_CONTEXT, () => this.passOnce(t));
          t.status = { ...t.status, lastError: null };
          t.errorReported = null;
        } catch (error) {
          if (this.stopSignal.signal.aborted) break; // stopping: what was cut short is not news
          const message = (error as Error).message;
          t.status = { ...t.status, lastError: message };
          if (t.errorReported !== message)
            this.logger.error(`phaseflag: controller: ${t.handle.id}: ${message}`, {
              migrationId: t.handle.id,
              error: message,
            });
          t.errorReported = message;
        }
      } while (t.again && !this.stopSignal.signal.aborted);
    })().finally(() => {
      t.pass = undefined;
      // A request that arrived as the loop ended (between its last check and now) still gets its pass.
      if (t.again) void this.request(t);
    });
    return t.pass;
  }

  private async passOnce(t: Tracked): Promise<void> {
    const id = t.handle.id;
    if (!(await this.leaders.tryAcquire(id))) {
      if (t.leaderSpan) this.endLeadership(t, 'lost');
      t.status = { ...t.status, lastStep: null };
      return;
    }
    if (!t.leaderSpan) this.beginLeadership(t);
    const { record, facts, instances } = await t.handle.inspect();
    reportInstances(t, instances, this.logger, this.deps.instanceTtlMs);
    const flags = t.flags.observe(t.leaderSpan?.spanContext());
    const readsHeld = record.readsHeldAt !== null;
    const step = decideNext({ facts, flags, backfillRunning: t.runner !== undefined, readsHeld });
    t.status = { ...t.status, phase: facts.phase, lastStep: step, readsHeldSince: record.readsHeldAt };
    if (step.kind === 'none') {
      if (!step.unknown) t.refused.clear(); // the refusal no longer applies: a new one is news again
      return;
    }
    const deps = {
      cause: (why: string) => this.cause(t, step.flag, flags, why),
      emit: this.emit,
      logger: this.logger,
      now: () => this.now(),
    };
    if (step.kind === 'refuse') return reportRefusal(t, step, deps);
    // While a backfill runs, only a pause may act; the rest waits for the runner to end (it asks for a pass).
    if (t.runner && step.action !== 'pause') return t.refused.clear();
    if (await refusedForDrift(t, step, deps)) return;
    t.refused.clear();
    await this.act(t, step, flags, record.version);
  }

  private async act(t: Tracked, step: ActStep, flags: PhaseFlagStates, version: number): Promise<void> {
    const cause = this.cause(t, step.flag, flags, step.why);
    const next = await performStep(t.handle, step, {
      signal: this.stopSignal.signal,
      cause,
      version,
      dropOldColumn: this.dropOldColumn,
      batch: this.options.backfill?.batch,
    });
    const backfill = { ...this.options.backfill, cause };
    // After stop() began, no runner starts: it may already be waiting on the ones it knows.
    if (next.startRunner && !this.stopSignal.signal.aborted)
      startBackfillRunner(t, backfill, this.logger, () => void this.request(t), this.runners);
    if (next.again) t.again = true;
  }

  private cause(t: Tracked, flag: PhaseFlag | null, flags: PhaseFlagStates, why: string): TransitionCause {
    return stepCause(t, flag, flags, why, {
      instanceId: this.instanceId,
      provider: this.options.flags.name,
      emit: this.emit,
    });
  }

  private beginLeadership(t: Tracked): void {
    t.leaderSpan = this.deps.ctx.tracer.startSpan(
      CONTROLLER_SPAN.leader,
      {
        root: true,
        attributes: {
          [ATTR.migrationId]: t.handle.id,
          [CONTROLLER_ATTR.instanceId]: this.instanceId,
          [ATTR.actor]: this.deps.ctx.actor,
        },
      },
      ROOT_CONTEXT,
    );
    t.flags.reset();
    t.refused.clear();
    this.logger.info(`phaseflag: controller ${this.instanceId} leads ${t.handle.id}`, {
      migrationId: t.handle.id,
      instanceId: this.instanceId,
    });
    this.emit({ kind: 'leader', migrationId: t.handle.id, leader: true, reason: 'acquired', at: this.now() });
  }

  private endLeadership(t: Tracked, why: 'lost' | 'stopped'): void {
    const span = t.leaderSpan;
    t.leaderSpan = undefined;
    t.runner?.abort.abort();
    if (!span) return;
    if (why === 'lost') span.setStatus({ code: SpanStatusCode.ERROR, message: 'leadership lost' });
    span.end();
    this.emit({ kind: 'leader', migrationId: t.handle.id, leader: false, reason: why, at: this.now() });
  }

  private now(): Date {
    return new Date(this.deps.ctx.clock.now());
  }

  private lost(ids: string[], why: string): void {
    for (const id of ids) {
      const t = this.tracked.get(id);
      if (!t) continue;
      this.logger.warn(`phaseflag: controller ${this.instanceId} lost the lead of ${id}: ${why}`, { migrationId: id });
      this.endLeadership(t, 'lost');
    }
  }
}
