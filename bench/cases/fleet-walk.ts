/**
 * Case 9's migration: the operator moves it through every phase while the fleet runs, and each transition is
 * timed from its commit until every instance applies it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { MigrationHandle } from '@phaseflag/postgres';
import { waitUntil } from '../lib/wait.js';
import type { FleetInstance } from './fleet-instance.js';

export interface FleetTransition {
  phase: string;
  version: number;
  /** From the commit until the first / the last instance applied it (a phase at least as new). */
  firstMs: number;
  allMs: number;
}

/** A phase change as the operator's watcher heard it. */
export interface HeardCommit {
  phase: string;
  version: number;
  atMs: number;
}

export async function walkPhases(
  m: MigrationHandle,
  fleet: readonly FleetInstance[],
  commits: readonly HeardCommit[],
  timing: { pollIntervalMs: number; heartbeatMs: number },
): Promise<FleetTransition[]> {
  const out: FleetTransition[] = [];
  const step = async (phase: string, move: () => Promise<unknown>) => {
    const from = commits.length;
    await move();
    await waitUntil(() => commits.slice(from).some((c) => c.phase === phase), 10_000, `the operator hears ${phase}`);
    const mine = commits.slice(from);
    const last = mine[mine.length - 1]!;
    await waitUntil(
      () => fleet.every((f) => f.appliedAt(last.version) !== null),
      timing.pollIntervalMs * 5 + 15_000,
      `every instance applies ${phase}`,
      2,
    );
    const wrong = fleet.filter((f) => f.router.core.currentPhase !== phase);
    if (wrong.length) throw new Error(`${wrong.length} routers are not in ${phase} (e.g. ${wrong[0]!.name})`);
    for (const c of mine) {
      const at = fleet.map((f) => f.appliedAt(c.version)!);
      // The commit clock: the first sighting of the commit, by the operator's watcher (a direct LISTEN) or by an
      // instance that heard the same NOTIFY a moment sooner.
      const committed = Math.min(c.atMs, ...at);
      out.push({
        phase: c.phase,
        version: c.version,
        firstMs: Math.min(...at) - committed,
        allMs: Math.max(...at) - committed,
      });
    }
    // The next transition lands at a random point of the instances' polling cycle.
    await sleep(Math.random() * timing.pollIntervalMs);
  };
  await step('expanded', () => m.expand());
  await step('dual-write', () => m.startDualWrite());
  await step('backfilled', () => m.backfill());
  await step('verified', () => m.verify());
  await step('read-new', () => m.readNew());
  // Contract refuses while a live instance reports reads of the old column: each reports at once on read-new.
  await waitUntil(
    async () => {
      const live = (await m.status()).instances.filter((i) => i.live);
      return live.length === fleet.length && live.every((i) => !i.readsOld);
    },
    timing.heartbeatMs * 3,
    'every instance reports reads of the new column only',
    200,
  );
  await step('contracted', () => m.contract({ confirm: true }));
  return out;
}
