/**
 * `npm run bench [-- --quick] [-- --rows N]`: one orchestrated run of every case of issue 6, each side by side with
 * its baseline, in a database of its own; then bench/RESULTS.md (or --out) is rewritten from the figures.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runBackfillCase } from './cases/backfill.js';
import { diagnoseBatch } from './cases/diagnose.js';
import { runExpandLock } from './cases/expand-lock.js';
import { runFleet } from './cases/fleet.js';
import { runLintComparison } from './cases/lint.js';
import { runPeers } from './cases/peers.js';
import { runPropagation } from './cases/propagation.js';
import { runRouterOverhead } from './cases/router-overhead.js';
import { runTraffic } from './cases/traffic.js';
import { runWriteAmplification } from './cases/write-amplification.js';
import { parseArgs } from './lib/args.js';
import { makeEngine, type BenchContext } from './lib/context.js';
import { createBenchDatabase } from './lib/db.js';
import { machineFacts, postgresFacts } from './lib/machine.js';
import type { ChangeKind } from './lib/orders.js';
import { renderResults } from './report/index.js';
import { renderLintResults } from './report/lint.js';
import type { BenchResults } from './report/results.js';

const args = parseArgs(process.argv.slice(2), {
  out: fileURLToPath(new URL('./RESULTS.md', import.meta.url)),
  quickOut: join(tmpdir(), 'phaseflag-bench-quick-RESULTS.md'),
  lintOut: fileURLToPath(new URL('./LINT-RESULTS.md', import.meta.url)),
  quickLintOut: join(tmpdir(), 'phaseflag-bench-quick-LINT-RESULTS.md'),
});
/** Case 10 writes a file of its own; RESULTS.md is rewritten only when another case ran (`--only 10` leaves it). */
const lintFile = (r: BenchResults) =>
  renderLintResults({
    command: r.command,
    startedAt: r.startedAt,
    quick: r.quick,
    ...(r.lint ? { lint: r.lint } : {}),
    ...(r.errors.some((e) => e.case === '10') ? { error: r.errors.find((e) => e.case === '10')!.message } : {}),
  });
if (args.render) {
  // Rewrites the report from the raw figures of an earlier run (--json), without measuring anything again.
  const saved = JSON.parse(readFileSync(args.render, 'utf8')) as BenchResults;
  writeFileSync(args.out, renderResults({ ...saved, renderedAt: new Date().toISOString().replace(/\.\d+Z$/, 'Z') }));
  process.stderr.write(`[bench] wrote ${args.out} from ${args.render}\n`);
  if (saved.lint) writeFileSync(args.lintOut, lintFile(saved));
  process.exit(0);
}
const quick = args.quick;
const started = performance.now();
const log = (m: string) =>
  process.stderr.write(`[bench ${((performance.now() - started) / 1000).toFixed(0).padStart(4)}s] ${m}\n`);
const wants = (n: number) => !args.only || args.only.has(n);
const changes: ChangeKind[] = ['email', 'amount'];

/** Case 9: 50 instances; settles past the pools' 30 s idle timeout, so the idle window sees the steady state. */
const FLEET = {
  instances: 50,
  rows: 10_000,
  maxConnections: 200,
  poolerPoolSize: 10,
  baselineMs: 10_000,
  settleMs: 35_000,
  idleMs: 30_000,
  sampleEveryMs: 250,
  contrast: true,
};

/** Quick: tiny tables and short windows, every code path once. Full: the issue's sizes and windows. */
const plan = quick
  ? {
      sizes: [5_000, 20_000],
      offsetCapMs: 1500,
      wa: { rows: 5_000, rounds: 2, perRound: 50 },
      traffic: { rows: 20_000, baselineMs: 800, changes: ['amount'] as ChangeKind[] },
      holdMs: 2500,
      router: { rounds: 3, perRound: 100_000, heapCalls: 500_000 },
      diag: { rows: 20_000, batch: 5_000 },
      propagation: { intervals: [{ ms: 1000, toggles: 2 }], instances: 3 },
      fleet: { ...FLEET, instances: 5, rows: 2000, baselineMs: 1000, settleMs: 500, idleMs: 2000, contrast: false },
      peers: { sizes: [20_000], baselineMs: 800, offsetCapMs: 1500 },
    }
  : {
      sizes: [100_000, 1_000_000, ...(args.rows ? [args.rows] : [])],
      offsetCapMs: 20_000,
      wa: { rows: 100_000, rounds: 8, perRound: 400 },
      traffic: { rows: 1_000_000, baselineMs: 5000, changes },
      holdMs: 10_000,
      router: { rounds: 7, perRound: 2_000_000, heapCalls: 10_000_000 },
      diag: { rows: 200_000, batch: 25_000 },
      propagation: {
        intervals: [
          { ms: 15_000, toggles: 4 },
          { ms: 1000, toggles: 6 },
        ],
        instances: 3,
      },
      fleet: FLEET,
      // Case 11: 1M rows only, about 3 minutes (why --rows adds no size there: cases/peers.ts).
      peers: { sizes: [1_000_000], baselineMs: 3000, offsetCapMs: 10_000 },
    };

const machine = machineFacts();
log(`load average ${machine.loadAtStart.map((x) => x.toFixed(2)).join(', ')} on ${machine.cores} cores`);
const db = await createBenchDatabase();
const results: Partial<BenchResults> & { errors: BenchResults['errors'] } = { errors: [] };
let schemaSeq = 0;
try {
  const admin = db.pool('pfb-admin', 4);
  const stateSchema = 'phaseflag';
  const pf = makeEngine(db.pool('pfb-engine', 6), stateSchema);
  await pf.install();
  const ctx: BenchContext = {
    db,
    admin,
    pf,
    stateSchema,
    quick,
    sizes: [...new Set(plan.sizes)].sort((a, b) => a - b),
    // One more worker than cores: each spends part of every batch in round trips and commits, so cores + 1 keeps them busy.
    workers: args.workers ?? machine.cores + 1,
    log,
    schemaFor: (label) => `r${++schemaSeq}_${label}`.toLowerCase(),
  };
  const step = async <T>(n: string, title: string, fn: () => Promise<T>): Promise<T | undefined> => {
    log(`case ${n}: ${title}`);
    try {
      return await fn();
    } catch (error) {
      log(`case ${n} failed: ${(error as Error).stack ?? String(error)}`);
      results.errors.push({ case: n, message: (error as Error).message.split('\n')[0]! });
      return undefined;
    }
  };
  Object.assign(results, {
    postgres: await postgresFacts(admin),
    databaseKind: db.kind,
    sizes: [...ctx.sizes],
    workers: ctx.workers,
    offsetCapSeconds: plan.offsetCapMs / 1000,
  });
  if (wants(1) || wants(2) || wants(7)) {
    results.diagnosis = await step('1', 'where one batch spends its time', async () => {
      const out = [];
      for (const kind of changes) out.push(await diagnoseBatch(ctx, kind, plan.diag.rows, plan.diag.batch));
      return out;
    });
    results.backfill = await step('1, 2, 7', 'backfill throughput, what it leaves behind, its memory', () =>
      runBackfillCase(ctx, { changes, offsetCapMs: plan.offsetCapMs }),
    );
  }
  if (wants(3))
    results.writeAmplification = await step('3', 'write amplification', () =>
      runWriteAmplification(ctx, { changes, ...plan.wa }),
    );
  if (wants(4))
    results.traffic = await step('4', 'live traffic during each backfill', () => runTraffic(ctx, plan.traffic));
  if (wants(5))
    results.expand = await step('5', 'expand behind a long transaction', () =>
      runExpandLock(ctx, { holdMs: plan.holdMs }),
    );
  if (wants(6)) results.router = await step('6', 'router overhead', () => runRouterOverhead(ctx, plan.router));
  if (wants(8)) results.propagation = await step('8', 'flag propagation', () => runPropagation(ctx, plan.propagation));
  if (wants(9)) results.fleet = await step('9', 'a fleet of service instances', () => runFleet(ctx, plan.fleet));
  if (wants(11))
    results.peers = await step('11', 'peers in the same run: pgroll, reshape, the OFFSET loop', () =>
      runPeers(ctx, { ...plan.peers, changes }),
    );
  if (wants(10)) results.lint = await step('10', 'phaseflag lint against squawk', () => runLintComparison(ctx));
  await pf.close();
} finally {
  await db.close();
}

machine.loadAtEnd = loadavg();
const final: BenchResults = {
  command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
  quick,
  startedAt: new Date(Date.now() - (performance.now() - started)).toISOString().replace(/\.\d+Z$/, 'Z'),
  durationSeconds: (performance.now() - started) / 1000,
  machine,
  ...(results as Omit<BenchResults, 'command' | 'quick' | 'startedAt' | 'durationSeconds' | 'machine'>),
};
const written: string[] = [];
if (!args.only || [...args.only].some((n) => n !== 10)) {
  writeFileSync(args.out, renderResults(final));
  written.push(args.out);
}
if (wants(10)) {
  writeFileSync(args.lintOut, lintFile(final));
  written.push(args.lintOut);
}
if (args.json) writeFileSync(args.json, JSON.stringify(final, null, 2));
log(`wrote ${written.join(', ')}${results.errors.length ? ` — ${results.errors.length} case(s) failed` : ''}`);
process.exitCode = results.errors.length ? 1 : 0;
