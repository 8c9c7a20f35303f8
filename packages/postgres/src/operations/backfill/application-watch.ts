import type { Counter, Span } from '@opentelemetry/api';
import { ATTR, METRIC, type BatchSettings, type ThrottleSettings } from '@phaseflag/core';
import type { ExecutorContext } from '../../context.js';
import { Session } from '../../driver/session.js';

/**
 * One sample of the application: the client backends other than the backfill's running a statement (gh-ost's
 * Threads_running), and the statements waiting on a lock one of the backfill's backends holds. pg_blocking_pids
 * is only asked of backends waiting on a heavyweight lock, so an idle server costs one scan of pg_stat_activity.
 * `running_ms` is how long the waiting statement has run: an upper bound of its wait.
 */
const SAMPLE_SQL = `
  SELECT (SELECT count(*)::int FROM pg_stat_activity a
           WHERE a.backend_type = 'client backend' AND a.state = 'active'
             AND a.pid <> pg_backend_pid() AND a.pid <> ALL($1::int[])) AS active,
         (SELECT coalesce(json_agg(json_build_object('pid', w.pid, 'blocker', w.blocker, 'ms', w.ms)), '[]'::json)
            FROM (SELECT a.pid, b.blocker,
                         (extract(epoch FROM clock_timestamp() - a.query_start) * 1000)::float8 AS ms
                    FROM pg_stat_activity a
                   CROSS JOIN LATERAL unnest(pg_blocking_pids(a.pid)) AS b(blocker)
                   WHERE a.wait_event_type = 'Lock' AND a.pid <> ALL($1::int[]) AND b.blocker = ANY($1::int[])) w
         ) AS waits`;

/** After a lock wait, the batches' cap grows back by this factor for every second without one. */
const RECOVERY_EVERY_MS = 1000;
const RECOVERY_GROWTH = 1.25;
/** Holding back after a lock wait lasts as long as the application waited, within these bounds. */
const MAX_HOLD_MS = 1000;
/** A yielding stretch ends (logged, a span event) after this long with nothing to yield to. */
const STRETCH_END_MS = 1000;

interface Wait {
  pid: number;
  blocker: number;
  ms: number;
}

/**
 * The application watch (throttle.yieldToApplication, throttle.maxLoad): a loop beside the Throttler that samples
 * the server on a connection of its own while the backfill runs. When an application statement waits on a row a
 * worker's batch holds, the batches' size is capped (halved, down to batch.minSize; it grows back by a quarter for
 * every second without a wait) and the workers hold back about as long as the application waited, so its queued
 * statements and their CPU go first. While more client backends than maxLoad run a statement, the workers hold
 * back. A stretch of yielding is logged and marked on the run's span once at its start and once at its end (with
 * its counts), not at every action; every action counts in the phaseflag.backfill.yields metric.
 */
export class ApplicationWatch {
  readonly enabled: boolean;
  private readonly own = new Set<number>();
  private session: Session | null = null;
  private loop: Promise<void> | null = null;
  private readonly stopping = new AbortController();
  private holdUntil = 0;
  private loadHigh = false;
  private failing = false;
  private cap: number | null = null;
  private lastWaitAt = 0;
  private lastGrowAt = 0;
  private stretch: {
    since: number;
    lastAt: number;
    lockWaits: number;
    loadHolds: number;
    longestWaitMs: number;
  } | null = null;

  private readonly yields: Counter;

  constructor(
    private readonly ctx: Pick<ExecutorContext, 'clock' | 'logger' | 'knex' | 'meter'>,
    private readonly migrationId: string,
    private readonly settings: ThrottleSettings,
    private readonly sizes: Pick<BatchSettings, 'minSize' | 'maxSize'>,
    /** The size the next batch asks for (RunShared.next). */
    private readonly currentSize: () => number,
    /** The run's span, which carries the yield.start and yield.end events. */
    private readonly span: Span,
  ) {
    this.enabled = settings.yieldToApplication || settings.maxLoad !== null;
    this.yields = ctx.meter.createCounter(METRIC.backfillYields, {
      unit: '{yield}',
      description: 'Times a backfill yielded to the application (a lock wait on its rows, or load)',
    });
  }

  /** Backends of this run (workers, the runner lock, VACUUM): neither load nor something to yield to. */
  addOwn(...pids: (number | null)[]): void {
    for (const pid of pids) if (pid !== null) this.own.add(pid);
  }

  removeOwn(pid: number | null): void {
    if (pid !== null) this.own.delete(pid);
  }

  /** Holding the workers back now (after a lock wait, or under load): progress shows the run as throttled. */
  get holding(): boolean {
    return this.loadHigh || this.ctx.clock.now() < this.holdUntil;
  }

  /** The most rows a batch may take now; null: no cap (the adaptive size alone). */
  get sizeCap(): number | null {
    return this.cap;
  }

  /** Takes the first sample before it returns, so the first batches already see the load as it is. */
  async start(): Promise<void> {
    if (!this.enabled || this.loop !== null) return;
    await this.sample();
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    await this.loop;
    this.loop = null;
    this.endStretch(this.ctx.clock.now());
    const session = this.session;
    this.session = null;
    await session?.release();
  }

  /**
   * Waits while the watch asks to hold back (after a lock wait, or under load) or until the signal aborts;
   * returns the milliseconds held, 0 when there was nothing to wait for.
   */
  async hold(signal: AbortSignal): Promise<number> {
    if (!this.enabled) return 0;
    const started = this.ctx.clock.now();
    let held = false;
    while (!signal.aborted) {
      const now = this.ctx.clock.now();
      if (now < this.holdUntil) {
        held = true;
        await this.ctx.clock.sleep(this.holdUntil - now, signal);
      } else if (this.loadHigh) {
        held = true;
        await this.ctx.clock.sleep(this.settings.yieldSampleMs, signal);
      } else break;
    }
    return held ? Math.max(1, this.ctx.clock.now() - started) : 0;
  }

  private async run(): Promise<void> {
    const signal = this.stopping.signal;
    for (;;) {
      await this.ctx.clock.sleep(this.settings.yieldSampleMs, signal);
      if (signal.aborted) return;
      await this.sample();
    }
  }

  private async sample(): Promise<void> {
    try {
      this.session ??= await Session.openDedicated(this.ctx.knex);
      const row = await this.session.one<{ active: number; waits: Wait[] }>(SAMPLE_SQL, [[...this.own]]);
      if (row) this.observe(row.active, row.waits);
      this.failing = false;
    } catch (error) {
      // A lost sample lets the backfill go on (a load it can no longer see does not hold it back for good); the
      // connection is opened again for the next one. Said once per failing stretch, not every few milliseconds.
      this.loadHigh = false;
      if (!this.failing)
        this.ctx.logger.warn(`backfill application watch: sample failed: ${(error as Error).message}`, {
          migrationId: this.migrationId,
        });
      this.failing = true;
      await this.session?.release().catch(() => undefined);
      this.session = null;
    }
  }

  private observe(active: number, waits: Wait[]): void {
    const now = this.ctx.clock.now();
    const { yieldToApplication, maxLoad } = this.settings;
    if (yieldToApplication && waits.length > 0) {
      const longest = Math.max(...waits.map((w) => w.ms));
      this.lastWaitAt = now;
      // One reaction per hold: a wait still in progress at the next sample is the same batch.
      if (now >= this.holdUntil) {
        this.cap = Math.max(this.sizes.minSize, Math.floor(Math.min(this.cap ?? Infinity, this.currentSize()) / 2));
        this.holdUntil = now + Math.min(MAX_HOLD_MS, Math.max(2 * this.settings.yieldSampleMs, longest));
        this.lastGrowAt = now;
        this.act(now, 'lock_wait', () => {
          const w = waits.find((x) => x.ms === longest)!;
          return `backend ${w.pid} waited ${Math.round(longest)} ms on rows of backfill backend ${w.blocker}`;
        });
        this.stretch!.lockWaits++;
        this.stretch!.longestWaitMs = Math.max(this.stretch!.longestWaitMs, longest);
      }
    } else if (this.cap !== null && now - this.lastWaitAt >= RECOVERY_EVERY_MS) {
      if (now - this.lastGrowAt >= RECOVERY_EVERY_MS) {
        this.lastGrowAt = now;
        const grown = Math.ceil(this.cap * RECOVERY_GROWTH);
        this.cap = grown >= this.sizes.maxSize ? null : grown;
      }
    }
    const high = maxLoad !== null && active > maxLoad;
    if (high && !this.loadHigh) {
      this.act(now, 'load', () => `${active} client backends running a statement (max ${maxLoad})`);
      this.stretch!.loadHolds++;
    }
    this.loadHigh = high;
    if (this.stretch && !high && now >= this.holdUntil && now - this.stretch.lastAt >= STRETCH_END_MS)
      this.endStretch(now);
  }

  private act(now: number, reason: 'lock_wait' | 'load', describe: () => string): void {
    this.yields.add(1, { [ATTR.migrationId]: this.migrationId, [ATTR.reason]: reason });
    if (this.stretch === null) {
      const what = describe();
      const cap = this.cap === null ? '' : `; batches now at most ${this.cap} rows`;
      this.stretch = { since: now, lastAt: now, lockWaits: 0, loadHolds: 0, longestWaitMs: 0 };
      this.ctx.logger.info(`backfill yielding to the application: ${what}${cap}`, {
        migrationId: this.migrationId,
        reason,
        batchSizeCap: this.cap,
      });
      this.span.addEvent('yield.start', { [ATTR.reason]: what });
    }
    this.stretch.lastAt = now;
  }

  private endStretch(now: number): void {
    const s = this.stretch;
    if (s === null) return;
    this.stretch = null;
    const ms = now - s.since;
    const counts = {
      'phaseflag.yield.lock_waits': s.lockWaits,
      'phaseflag.yield.load_holds': s.loadHolds,
      'phaseflag.yield.longest_wait_ms': Math.round(s.longestWaitMs),
    };
    this.ctx.logger.info(
      `backfill stopped yielding to the application after ${ms} ms (${s.lockWaits} lock waits, longest ${Math.round(s.longestWaitMs)} ms; ${s.loadHolds} times under load)`,
      { migrationId: this.migrationId, yieldedMs: ms, lockWaits: s.lockWaits, loadHolds: s.loadHolds },
    );
    this.span.addEvent('yield.end', counts);
  }
}
