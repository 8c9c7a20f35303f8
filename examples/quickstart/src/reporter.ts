/**
 * Prints what the services report as it happens (phases, refusals, leadership, backfill progress) and keeps
 * when each instance reached each phase, for the waits of the walk and the summary's time per phase.
 */
import { PHASES } from '@phaseflag/core';
import type { ServiceEvent, ServiceProcess } from './service-process.js';

export interface PhaseArrival {
  migration: string;
  phase: string;
  /** First and last instance to report it (ms since epoch), and who. */
  firstAt: number;
  lastAt: number;
  instances: string[];
}

const ORDER = new Map<string, number>(PHASES.map((p, i) => [p, i]));

/** `phase` is `target` or later on the forward path (rolled-back counts as neither). */
export function reached(phase: string | undefined, target: string): boolean {
  if (phase === undefined || phase === 'rolled-back') return phase === target;
  return (ORDER.get(phase) ?? -1) >= (ORDER.get(target) ?? Infinity);
}

export class Reporter {
  readonly t0 = Date.now();
  /** Arrivals in the order they were first reported. */
  readonly arrivals: PhaseArrival[] = [];
  readonly refusals: ServiceEvent[] = [];
  private readonly current = new Map<string, string>(); // `${instance}|${migration}` → phase
  private readonly leaders = new Map<string, string>();
  private lastProgress = new Map<string, number>();

  constructor(
    private readonly services: ServiceProcess[],
    private readonly say: (line: string) => void,
    private readonly options: { migration?: string } = {},
  ) {
    for (const s of services) {
      for (const e of s.events) this.onEvent(e, false);
      s.subscribe((e) => this.onEvent(e, true));
    }
  }

  /** `[ 12.3 s]` since the reporter started. */
  stamp(at = Date.now()): string {
    return `[${((at - this.t0) / 1000).toFixed(1).padStart(6)} s]`;
  }

  note(line: string): void {
    this.say(`${this.stamp()} ${line}`);
  }

  /** The phase the instance last reported for the migration. */
  phaseOf(instanceId: string, migration: string): string | undefined {
    return this.current.get(`${instanceId}|${migration}`);
  }

  /** Every instance has reported `target` (or a later phase) for the migration. */
  allReached(migration: string, target: string): boolean {
    return this.services.every((s) => reached(this.phaseOf(s.instanceId, migration), target));
  }

  arrival(migration: string, phase: string): PhaseArrival | undefined {
    return this.arrivals.find((a) => a.migration === migration && a.phase === phase);
  }

  private onEvent(e: ServiceEvent, live: boolean): void {
    const migration = typeof e.migration === 'string' ? e.migration : undefined;
    const shown =
      migration !== undefined && (this.options.migration === undefined || this.options.migration === migration);
    const who = e.instanceId ?? '?';
    if (e.event === 'listening' && e.phases && typeof e.phases === 'object') {
      for (const [id, phase] of Object.entries(e.phases as Record<string, string>))
        this.current.set(`${who}|${id}`, phase);
      return;
    }
    if (e.event === 'phase' && migration && typeof e.phase === 'string') {
      this.current.set(`${who}|${migration}`, e.phase);
      let arrival = this.arrival(migration, e.phase);
      if (!arrival) {
        arrival = { migration, phase: e.phase, firstAt: e.receivedAt, lastAt: e.receivedAt, instances: [] };
        this.arrivals.push(arrival);
        if (live && shown)
          this.say(
            `${this.stamp(e.receivedAt)} ${migration}: phase ${bold(e.phase)}  (${who} applies it${e.from ? `; was ${String(e.from)}` : ''})`,
          );
      }
      arrival.lastAt = e.receivedAt;
      if (!arrival.instances.includes(who)) arrival.instances.push(who);
      return;
    }
    if (e.event === 'refused' && migration) {
      this.refusals.push(e);
      if (live && shown) {
        const what = String(e.action ?? e.step ?? 'a step');
        const why = String(e.reason ?? e.code ?? '');
        this.say(
          `${this.stamp(e.receivedAt)} ${migration}: ${red('REFUSED')} ${what}${e.code ? ` (${String(e.code)})` : ''}: ${why}`,
        );
        if (e.hint) this.say(`${' '.repeat(10)}  ${String(e.hint)}`);
      }
      return;
    }
    if (e.event === 'leader' && migration) {
      const leads = e.leader !== false && e.leading !== false;
      if (leads && this.leaders.get(migration) !== who) {
        this.leaders.set(migration, who);
        // Also when replayed: who leads is worth saying even if it was settled before the walk began.
        if (shown)
          this.say(
            `${this.stamp(Math.max(e.receivedAt, this.t0))} ${migration}: ${who} leads (its controller acts on the flags)`,
          );
      }
      return;
    }
    if (e.event === 'backfill' && migration && live && shown) {
      const done = Number(e.rowsDone ?? 0);
      const total = Number(e.rowsTotal ?? e.rowsEstimate ?? 0);
      // One line per quarter, so a log stays readable; the summary has the totals.
      const quarter = total > 0 ? Math.floor((done / total) * 4) : 0;
      if (quarter > (this.lastProgress.get(migration) ?? 0) && quarter < 4) {
        this.lastProgress.set(migration, quarter);
        this.say(
          `${this.stamp(e.receivedAt)} ${migration}: backfill ${done.toLocaleString('en-US')} of ${total.toLocaleString('en-US')} rows`,
        );
      }
    }
  }
}

const color = (code: number) => (s: string) =>
  process.stdout.isTTY && !process.env.NO_COLOR ? `\x1b[${code}m${s}\x1b[0m` : s;
export const bold = color(1);
export const red = color(31);
export const green = color(32);
