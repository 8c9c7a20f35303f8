import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { defineMigration, silentLogger, type Migration } from '@phaseflag/core';
import { waitFor, type UnleashServer } from '@phaseflag/testkit';
import { InMemStorageProvider, Unleash, type UnleashConfig } from 'unleash-client';

export const ENV = 'development';

/** A migration with a unique id, so suites sharing a server never share flags. */
export function ordersMigration(prefix = 'orders-amount'): Migration {
  return defineMigration({
    id: `${prefix}-${randomBytes(3).toString('hex')}`,
    table: 'public.orders',
    oldColumn: 'amount_cents',
    newColumn: { name: 'amount', type: 'numeric(12,2)', nullable: false },
    backfill: 'amount_cents::numeric / 100',
  });
}

/** unleash-client options for the test server: 1 s polls, no metrics, no backup file unless asked for. */
export function clientConfig(server: UnleashServer, extra: Partial<UnleashConfig> = {}): UnleashConfig {
  return {
    url: `${server.url}/api`,
    appName: `phaseflag-test-${randomBytes(3).toString('hex')}`,
    environment: ENV,
    customHeaders: { Authorization: server.clientToken },
    refreshInterval: 1000,
    disableMetrics: true,
    skipInstanceCountWarning: true,
    ...(extra.backupPath === undefined ? { storageProvider: new InMemStorageProvider() } : {}),
    ...extra,
  };
}

export function newClient(server: UnleashServer, extra: Partial<UnleashConfig> = {}): Unleash {
  return new Unleash(clientConfig(server, extra));
}

/** Creates a flag the way an operator does in the UI: a gradual rollout first, then on (unless `on: false`). */
export async function operatorFlag(
  server: UnleashServer,
  name: string,
  options: { rollout?: number; stickiness?: string; on?: boolean } = {},
): Promise<string> {
  await server.admin.createFlag(name, { description: 'test flag' });
  const strategyId = await server.admin.addFlexibleRollout(name, ENV, {
    rollout: options.rollout ?? 100,
    stickiness: options.stickiness ?? 'default',
  });
  if (options.on !== false) await server.admin.enable(name, ENV);
  return strategyId;
}

/** Milliseconds until `predicate` holds, polling every 10 ms. */
export async function msUntil(
  predicate: () => boolean,
  timeoutMs = 10_000,
  description = 'condition',
): Promise<number> {
  const started = performance.now();
  await waitFor(predicate, { timeoutMs, intervalMs: 10, description });
  return Math.round(performance.now() - started);
}

export const quiet = { logger: silentLogger };

export function summarize(samples: number[]): string {
  const sorted = [...samples].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)]!;
  return `median ${median} ms, min ${sorted[0]} ms, max ${sorted[sorted.length - 1]} ms over ${samples.length}`;
}

/** A loopback port nothing listens on (bound, then closed). */
export function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
      .once('error', reject)
      .listen(0, '127.0.0.1', () => {
        const { port } = server.address() as { port: number };
        server.close(() => resolve(port));
      });
  });
}
