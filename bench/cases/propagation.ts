/**
 * Case 8: flag propagation. A real unleash-server (the testkit's startUnleash, in this process, on the bench's
 * Postgres) and N service instances, each an unleash-client + UnleashFlagSource + Router in phase read-new. An
 * operator toggles the read-new flag through the Admin API; we time from the moment the request is sent until
 * every instance's router reads the other column. The instances poll at the refresh interval under test, so each
 * toggle is sent after a random pause to land at a random point of their polling cycle.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { defineMigration, Router } from '@phaseflag/core';
import type { BenchContext } from '../lib/context.js';
import { median } from '../lib/stats.js';
import { waitUntil } from '../lib/wait.js';

export interface PropagationSeries {
  refreshIntervalMs: number;
  instances: number;
  /** Per toggle: ms until every instance applied it, and until the first did. */
  toggles: { to: 'on' | 'off'; allMs: number; firstMs: number }[];
  medianAllMs: number;
  maxAllMs: number;
}

export interface PropagationCase {
  measured: boolean;
  /** Why not, when not measured. */
  reason?: string;
  series: PropagationSeries[];
  serverStartMs?: number;
}

const FLAG = 'bench-orders-amount.read-new';

export async function runPropagation(
  ctx: BenchContext,
  options: { intervals: readonly { ms: number; toggles: number }[]; instances: number },
): Promise<PropagationCase> {
  let testkit: typeof import('@phaseflag/testkit');
  let unleashPackage: typeof import('@phaseflag/unleash');
  let client: typeof import('unleash-client');
  try {
    testkit = await import('@phaseflag/testkit');
    unleashPackage = await import('@phaseflag/unleash');
    client = await import('unleash-client');
    if (typeof testkit.startUnleash !== 'function') throw new Error('@phaseflag/testkit has no startUnleash() yet');
  } catch (error) {
    return { measured: false, reason: `the Unleash harness is not available: ${(error as Error).message}`, series: [] };
  }
  let server: Awaited<ReturnType<typeof testkit.startUnleash>>;
  try {
    server = await testkit.startUnleash();
  } catch (error) {
    return { measured: false, reason: `startUnleash() failed: ${(error as Error).message.split('\n')[0]}`, series: [] };
  }
  const series: PropagationSeries[] = [];
  try {
    await server.admin.createFlag(FLAG);
    const migration = defineMigration({
      id: 'bench-orders-amount',
      table: 'orders',
      oldColumn: 'amount_cents',
      newColumn: { name: 'amount', type: 'numeric(12,2)' },
      backfill: 'amount_cents::numeric / 100',
    });
    for (const interval of options.intervals) {
      ctx.log(
        `  flag propagation: ${options.instances} instances, refresh every ${interval.ms / 1000} s, ${interval.toggles} toggles`,
      );
      const fleet = Array.from({ length: options.instances }, (_, i) => {
        const unleash = new client.Unleash({
          url: `${server.url}/api`,
          appName: 'phaseflag-bench',
          instanceId: `bench-${interval.ms}-${i}`,
          refreshInterval: interval.ms,
          disableMetrics: true,
          customHeaders: { Authorization: server.clientToken },
          storageProvider: new client.InMemStorageProvider(),
        });
        unleash.on('error', () => undefined);
        unleash.on('warn', () => undefined);
        const source = new unleashPackage.UnleashFlagSource({ client: unleash, refreshIntervalMs: interval.ms });
        const router = new Router(migration, {
          flags: source,
          snapshot: { migrationId: migration.id, phase: 'read-new', version: 1 },
        });
        return { unleash, source, router };
      });
      try {
        await waitUntil(() => fleet.every((x) => x.source.status().known), 30_000, 'every instance knows its flags');
        let on =
          (await server.admin.getFlag(FLAG))?.environments.find((e) => e.name === server.environment)?.enabled === true;
        const toggles: PropagationSeries['toggles'] = [];
        for (let t = 0; t < interval.toggles; t++) {
          await waitUntil(
            () => fleet.every((x) => (x.router.readColumn() === 'amount') === on),
            interval.ms * 3 + 5000,
            'the fleet agrees before a toggle',
          );
          await sleep(Math.random() * interval.ms);
          on = !on;
          const wanted = on ? 'amount' : 'amount_cents';
          const applied: (number | null)[] = fleet.map(() => null);
          const started = performance.now();
          const request = on
            ? server.admin.enable(FLAG, server.environment)
            : server.admin.disable(FLAG, server.environment);
          await waitUntil(
            () => {
              const now = performance.now() - started;
              fleet.forEach((x, i) => {
                if (applied[i] === null && x.router.readColumn() === wanted) applied[i] = now;
              });
              return applied.every((a) => a !== null);
            },
            interval.ms * 3 + 10_000,
            `every instance applies the toggle to ${on ? 'on' : 'off'}`,
            2,
          );
          await request;
          const times = applied as number[];
          toggles.push({ to: on ? 'on' : 'off', allMs: Math.max(...times), firstMs: Math.min(...times) });
        }
        const all = toggles.map((x) => x.allMs);
        series.push({
          refreshIntervalMs: interval.ms,
          instances: options.instances,
          toggles,
          medianAllMs: median(all),
          maxAllMs: Math.max(...all),
        });
      } finally {
        for (const x of fleet) {
          x.source.close();
          x.unleash.destroy();
        }
      }
    }
    return { measured: true, series, serverStartMs: server.lastStartMs };
  } catch (error) {
    return {
      measured: series.length > 0,
      reason: `stopped early: ${(error as Error).message.split('\n')[0]}`,
      series,
      serverStartMs: server.lastStartMs,
    };
  } finally {
    await server.stop().catch(() => undefined);
  }
}
