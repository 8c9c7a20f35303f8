/**
 * Case 11: peers in the same run. Each change of bench/lib/orders.ts, on fresh copies of the same table, backfilled
 * five ways side by side: one `UPDATE t SET new = expr`, phaseflag (defaults, 1 worker, in a child process as in
 * case 1), pgroll's backfill and reshape's backfill (reproduced with their triggers: see peers-tools.ts for the
 * sources followed and what was simplified), and the hand-written LIMIT/OFFSET loop (capped, then extrapolated, as
 * in case 1). For each: rows/s, the application's read and write latencies during it against a window with no
 * backfill on the same table (case 4's load and lock watcher), and the table's size after against before.
 *
 * It runs at 1M rows only, in about 4 minutes: `--rows` adds no size here. pgroll's and reshape's batches of 1000
 * rows backfill 25–60k rows/s on this shared 2-core machine, so at 10M rows their four runs alone would take 15–20
 * minutes even without the load and the OFFSET loop, past the 8 minutes the case may take.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Knex } from 'knex';
import { runChild } from '../lib/child.js';
import type { BenchContext } from '../lib/context.js';
import { scalar } from '../lib/db.js';
import {
  addColumnSql,
  buildOrders,
  CHANGES,
  dropSchema,
  migrationInput,
  singleUpdateSql,
  type Change,
  type ChangeKind,
} from '../lib/orders.js';
import { checkpoint, relationSizes, type RelationSizes } from '../lib/pg-stats.js';
import { prepareDualWrite, type EngineResult } from './backfill.js';
import { runOffsetLoop, type OffsetLoopResult } from './offset-loop.js';
import { installPgroll, installReshape, runPgrollBackfill, runReshapeBackfill } from './peers-tools.js';
import { APP, measureWindow, type TrafficRun } from './traffic.js';

export type PeerMethod = 'single-update' | 'phaseflag-1' | 'pgroll' | 'reshape' | 'offset-loop';
export const PEER_METHODS: readonly PeerMethod[] = ['single-update', 'phaseflag-1', 'pgroll', 'reshape', 'offset-loop'];

export interface PeerRun {
  method: PeerMethod;
  change: ChangeKind;
  rows: number;
  seconds: number;
  rowsPerSecond: number;
  batches?: number;
  /** The LIMIT/OFFSET loop: what was measured before the cap, and how the rest was extrapolated. */
  offset?: OffsetLoopResult;
  before: RelationSizes;
  after: RelationSizes;
  /** The application's load with no backfill, then during it. */
  traffic: { baseline: TrafficRun['baseline']; during: TrafficRun['during'] };
  /** Rows whose new column differs from the expression afterwards (a full scan; not for a capped loop). */
  wrongRows: number | null;
}

export interface PeersCase {
  runs: PeerRun[];
  offsetCapSeconds: number;
  baselineSeconds: number;
}

export interface PeersOptions {
  sizes: readonly number[];
  changes: readonly ChangeKind[];
  baselineMs: number;
  offsetCapMs: number;
}

export async function runPeers(ctx: BenchContext, options: PeersOptions): Promise<PeersCase> {
  const runs: PeerRun[] = [];
  for (const rows of options.sizes) {
    for (const kind of options.changes) {
      for (const method of PEER_METHODS) runs.push(await peerRun(ctx, CHANGES[kind], method, rows, options));
    }
  }
  return {
    runs,
    offsetCapSeconds: options.offsetCapMs / 1000,
    baselineSeconds: options.baselineMs / 1000,
  };
}

interface Timed {
  seconds: number;
  batches?: number;
  offset?: OffsetLoopResult;
}

async function peerRun(
  ctx: BenchContext,
  change: Change,
  method: PeerMethod,
  rows: number,
  options: PeersOptions,
): Promise<PeerRun> {
  const schema = ctx.schemaFor(`peer_${method.replace('-', '')}_${change.kind}_${rows}`);
  const id = `peer-${change.kind}-${method}-${schema.slice(-6)}`;
  const tool = ctx.db.pool(`pfb-peer-${method}`, 1);
  try {
    let before: RelationSizes;
    let touched = '';
    if (method === 'phaseflag-1') {
      before = await prepareDualWrite(ctx, change, schema, id, rows);
    } else {
      await buildOrders(ctx.admin, schema, rows);
      before = await relationSizes(ctx.admin, schema);
      if (method === 'pgroll') await installPgroll(ctx.admin, change, schema);
      else if (method === 'reshape') touched = await installReshape(ctx.admin, change, schema);
      else await ctx.admin.raw(addColumnSql(change, schema));
    }
    await tool.raw('SELECT 1'); // connected before any window opens
    await checkpoint(ctx.admin);
    ctx.log(`  ${method}, ${change.kind}, ${rows} rows, under application load`);
    let timed: Timed = { seconds: NaN };
    const body = async (begin: () => void) => {
      timed = await backfill(ctx, tool, change, method, schema, id, rows, touched, options.offsetCapMs, begin);
    };
    const app = ctx.db.pool(APP, 4);
    let traffic: PeerRun['traffic'];
    try {
      const baseline = await measureWindow(ctx, app, schema, change.kind, rows, async (begin) => {
        begin();
        await sleep(options.baselineMs);
      });
      const during = await measureWindow(ctx, app, schema, change.kind, rows, body);
      traffic = { baseline, during };
    } finally {
      await app.destroy();
    }
    const completed = !timed.offset || timed.offset.completed;
    return {
      method,
      change: change.kind,
      rows,
      seconds: timed.seconds,
      rowsPerSecond: rows / timed.seconds,
      ...(timed.batches !== undefined ? { batches: timed.batches } : {}),
      ...(timed.offset ? { offset: timed.offset } : {}),
      before,
      after: await relationSizes(ctx.admin, schema),
      traffic,
      wrongRows: completed ? await wrongRows(ctx.admin, change, schema) : null,
    };
  } finally {
    await tool.destroy();
    await dropSchema(ctx.admin, schema);
  }
}

/** One backfill, timed from `begin()`, which each method calls right before its first statement. */
async function backfill(
  ctx: BenchContext,
  tool: Knex,
  change: Change,
  method: PeerMethod,
  schema: string,
  id: string,
  rows: number,
  touched: string,
  offsetCapMs: number,
  begin: () => void,
): Promise<Timed> {
  if (method === 'phaseflag-1') {
    // The child's start-up (tsx compiling TypeScript) is not the backfill: the window opens when it is ready.
    const child = await runChild<{ wallMs: number; result: EngineResult }>(
      'backfill',
      {
        url: ctx.db.url,
        stateSchema: ctx.stateSchema,
        migration: migrationInput(change, id, schema),
        workers: 1,
        applicationName: 'pfb-peer-phaseflag',
      },
      { onReady: begin },
    );
    if (!child.result.completed) throw new Error(`phaseflag backfill ${id} did not complete`);
    return { seconds: child.wallMs / 1000, batches: child.result.batches };
  }
  begin();
  const started = performance.now();
  const elapsed = () => (performance.now() - started) / 1000;
  switch (method) {
    case 'single-update':
      await tool.raw(singleUpdateSql(change, schema));
      return { seconds: elapsed() };
    case 'pgroll':
      return { ...(await runPgrollBackfill(tool, schema)), seconds: elapsed() };
    case 'reshape':
      return { ...(await runReshapeBackfill(tool, schema, touched)), seconds: elapsed() };
    case 'offset-loop': {
      const offset = await runOffsetLoop(tool, change, schema, rows, offsetCapMs);
      return { seconds: offset.totalSeconds, offset, batches: Math.ceil(offset.rowsMeasured / 1000) };
    }
  }
}

async function wrongRows(knex: Knex, change: Change, schema: string): Promise<number> {
  return scalar<number>(
    knex,
    `SELECT count(*)::int FROM "${schema}".orders WHERE ${change.newColumn} IS DISTINCT FROM (${change.expression})::${change.newType}`,
  );
}
