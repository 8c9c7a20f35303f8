/**
 * Case 6, in a process of its own started with --expose-gc: nanoseconds per routing decision against a bare
 * unleash-client isEnabled() on the same flag and context, and heap growth over many decisions.
 *
 * - bare: `unleash.isEnabled(flag, context)` on a client bootstrapped in memory (refreshInterval 0: no server,
 *   disableMetrics: no metrics timer);
 * - source: the same flag through @phaseflag/unleash's UnleashFlagSource (freshness check, "unknown" handling);
 * - router: the core Router in phase read-new over that source, `readColumn(context)` = decide + the read
 *   counter a heartbeat reports: what a request pays to know which column to read.
 *
 * Variants alternate in rounds of `perRound` calls; each figure is the median round. Heap growth is heapUsed
 * after a full GC, before and after `heapCalls` router decisions.
 */
import { defineMigration, Router, type FlagSource } from '@phaseflag/core';
import { InMemStorageProvider, Unleash } from 'unleash-client';
import { childInput, memoryStatus } from '../lib/child.js';
import { median } from '../lib/stats.js';

interface Input {
  rounds: number;
  perRound: number;
  heapCalls: number;
}

const input = childInput<Input>();
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');
const FLAG = 'orders-amount.read-new';

// Imported before the client exists: the source must be listening when the client loads its bootstrap (the
// client starts on the next tick, and an await in between would let it start unobserved).
const unleashPackage = await import('@phaseflag/unleash').catch(() => null);
const unleash = new Unleash({
  url: 'http://127.0.0.1:9/api',
  appName: 'phaseflag-bench',
  refreshInterval: 0,
  disableMetrics: true,
  storageProvider: new InMemStorageProvider(),
  bootstrap: {
    data: [
      {
        name: FLAG,
        enabled: true,
        project: 'default',
        strategies: [{ name: 'default', parameters: {}, constraints: [] }],
        variants: [],
      },
    ] as never,
  },
});
unleash.on('error', () => undefined);
unleash.on('warn', () => undefined);

let source: FlagSource;
let sourceKind: 'UnleashFlagSource' | 'bench adapter';
if (unleashPackage) {
  source = new unleashPackage.UnleashFlagSource({ client: unleash, staleAfterMs: 24 * 3600_000 });
  sourceKind = 'UnleashFlagSource';
} else {
  // @phaseflag/unleash not built yet: the thinnest possible FlagSource over the same client.
  source = { name: 'unleash', isEnabled: (flag, context) => unleash.isEnabled(flag, context as never) };
  sourceKind = 'bench adapter';
}
await new Promise<void>((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error('unleash-client never loaded its bootstrap')), 10_000);
  const check = () => {
    if (unleash.isEnabled(FLAG) && source.isEnabled(FLAG) === true) {
      clearTimeout(timer);
      resolve();
    } else setTimeout(check, 10);
  };
  check();
});

const migration = defineMigration({
  id: 'orders-amount',
  table: 'orders',
  oldColumn: 'amount_cents',
  newColumn: { name: 'amount', type: 'numeric(12,2)' },
  backfill: 'amount_cents::numeric / 100',
});
const router = new Router(migration, {
  flags: source,
  snapshot: { migrationId: 'orders-amount', phase: 'read-new', version: 1 },
});
const context = { userId: '42', sessionId: 's-42' };
if (router.readColumn(context) !== 'amount')
  throw new Error('the router does not read the new column: the benchmark would measure the wrong path');

let sink = 0;
const variants: Record<string, (n: number) => void> = {
  bare: (n) => {
    for (let i = 0; i < n; i++) if (unleash.isEnabled(FLAG, context)) sink++;
  },
  source: (n) => {
    for (let i = 0; i < n; i++) if (source.isEnabled(FLAG, context)) sink++;
  },
  router: (n) => {
    for (let i = 0; i < n; i++) if (router.readColumn(context) === 'amount') sink++;
  },
};
for (const run of Object.values(variants)) run(200_000); // warm up the JIT on every path
const ns: Record<string, number[]> = { bare: [], source: [], router: [] };
for (let round = 0; round < input.rounds; round++) {
  const order = round % 2 ? ['router', 'source', 'bare'] : ['bare', 'source', 'router'];
  for (const name of order) {
    const t0 = process.hrtime.bigint();
    variants[name]!(input.perRound);
    ns[name]!.push(Number(process.hrtime.bigint() - t0) / input.perRound);
  }
}

const heap = (name: string) => {
  gc();
  gc();
  const before = process.memoryUsage().heapUsed;
  variants[name]!(input.heapCalls);
  gc();
  gc();
  return process.memoryUsage().heapUsed - before;
};
const heapGrowth = { bare: heap('bare'), router: heap('router') };
router.takeReadCounts();
(source as { close?: () => void }).close?.();
unleash.destroy();
process.stdout.write(
  `${JSON.stringify({
    sourceKind,
    nsPerCall: { bare: median(ns.bare!), source: median(ns.source!), router: median(ns.router!) },
    rounds: ns,
    heapCalls: input.heapCalls,
    heapGrowth,
    peakRss: memoryStatus().peakRss,
    sink,
  })}\n`,
);
