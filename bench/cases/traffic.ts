/**
 * Case 4: live traffic during each backfill. A writer and a reader hit random rows of the table, first with no
 * backfill running (the baseline, on the same table in the same state), then while the backfill runs. Latencies
 * are timed by the application; lock waits are watched in pg_stat_activity (statements of the application seen
 * waiting on a heavyweight lock, bounded from above at the sampling resolution).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { startLoad, type LoadReport } from '@phaseflag/testkit';
import type { Knex } from 'knex';
import { runChild } from '../lib/child.js';
import type { BenchContext } from '../lib/context.js';
import {
  addColumnSql,
  buildOrders,
  CHANGES,
  dropSchema,
  migrationInput,
  singleUpdateSql,
  type ChangeKind,
} from '../lib/orders.js';
import { watchLockWaits, type LockWaitReport } from '../lib/pg-stats.js';
import { prepareDualWrite } from './backfill.js';

export type TrafficMethod = 'single-update' | 'phaseflag-1' | 'phaseflag-n' | 'phaseflag-gentle' | 'phaseflag-yield';

/**
 * The setting an operator would choose for a small, busy primary: batches of about 20 ms (fewer rows locked at
 * once) with a 20 ms pause after each (CPU left to the application): about half the default's throughput.
 */
export const GENTLE_BATCH = { targetBatchMs: 20, pauseMs: 20 } as const;

/**
 * The setting README.md documents for keeping the application's p99 within 2× (issue 16, target 2): short batches
 * with a pause longer than each (the backfill's backend busy 40% of the time), and the application watch, which
 * halves the batches and holds back whenever an application statement is seen waiting on a batch's rows.
 */
export const YIELD_SETTING = {
  batch: { targetBatchMs: 20, pauseMs: 30 },
  throttle: { yieldToApplication: true },
} as const;

export interface LatencySummary {
  ops: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface TrafficRun {
  method: TrafficMethod;
  change: ChangeKind;
  rows: number;
  backfillSeconds: number;
  /** phaseflag's own account of the run: its batches and the time it held back (throttle, application watch). */
  backfill?: { batches: number; throttledMs: number };
  baseline: { read: LatencySummary; write: LatencySummary; lockWait: LockWaitReport };
  during: { read: LatencySummary; write: LatencySummary; lockWait: LockWaitReport };
}

export const APP = 'pfb-app-traffic';

export async function runTraffic(
  ctx: BenchContext,
  options: { changes: readonly ChangeKind[]; rows: number; baselineMs: number },
): Promise<TrafficRun[]> {
  const runs: TrafficRun[] = [];
  for (const kind of options.changes) {
    for (const method of [
      'single-update',
      'phaseflag-1',
      'phaseflag-n',
      'phaseflag-gentle',
      'phaseflag-yield',
    ] as const) {
      runs.push(await trafficRun(ctx, kind, method, options.rows, options.baselineMs));
    }
  }
  return runs;
}

export async function trafficRun(
  ctx: BenchContext,
  kind: ChangeKind,
  method: TrafficMethod,
  rows: number,
  baselineMs: number,
): Promise<TrafficRun> {
  const change = CHANGES[kind];
  const schema = ctx.schemaFor(`traffic_${method.replace('-', '')}_${kind}`);
  const workers = method === 'phaseflag-n' ? ctx.workers : 1;
  const id = `traffic-${kind}-${method}-${schema.slice(-6)}`;
  if (method === 'single-update') {
    await buildOrders(ctx.admin, schema, rows);
    await ctx.admin.raw(addColumnSql(change, schema));
  } else {
    await prepareDualWrite(ctx, change, schema, id, rows);
  }
  ctx.log(`  traffic during ${method}, ${kind}, ${rows} rows`);
  const app = ctx.db.pool(APP, 4);
  try {
    const baseline = await measureWindow(ctx, app, schema, kind, rows, async (begin) => {
      begin();
      await sleep(baselineMs);
    });
    let backfillSeconds = 0;
    let account: TrafficRun['backfill'];
    const during = await measureWindow(ctx, app, schema, kind, rows, async (begin) => {
      let started = performance.now();
      if (method === 'single-update') {
        const conn = ctx.db.pool('pfb-traffic-update', 1);
        await conn.raw('SELECT 1'); // connected before the window opens
        begin();
        started = performance.now();
        await conn.raw(singleUpdateSql(change, schema));
        await conn.destroy();
      } else {
        // The window opens when the child has loaded and connected: its start-up (tsx compiling TypeScript) is
        // not the backfill, and would otherwise count against it.
        const out = await runChild<{ result: { batches: number; throttledMs: number; reindexMs?: number } }>(
          'backfill',
          {
            url: ctx.db.url,
            stateSchema: ctx.stateSchema,
            migration: migrationInput(change, id, schema),
            workers,
            applicationName: 'pfb-backfill-traffic',
            ...(method === 'phaseflag-gentle' ? { batch: GENTLE_BATCH } : {}),
            ...(method === 'phaseflag-yield' ? YIELD_SETTING : {}),
          },
          {
            onReady: () => {
              begin();
              started = performance.now();
            },
          },
        );
        account = { batches: out.result.batches, throttledMs: out.result.throttledMs };
        // The rows/s are the backfill's, as in case 1: the index rebuild that follows it is not counted (its time
        // stays inside the window, so the application's latencies and lock waits include it).
        started += out.result.reindexMs ?? 0;
      }
      backfillSeconds = (performance.now() - started) / 1000;
    });
    return { method, change: kind, rows, backfillSeconds, ...(account ? { backfill: account } : {}), baseline, during };
  } finally {
    await app.destroy();
    await dropSchema(ctx.admin, schema);
  }
}

/** Runs `body`; the application's load and the lock watcher run from its call of `begin()` until it returns. */
export async function measureWindow(
  ctx: BenchContext,
  app: Knex,
  schema: string,
  kind: ChangeKind,
  rows: number,
  body: (begin: () => void) => Promise<void>,
): Promise<TrafficRun['baseline']> {
  const rand = (n: number) => 1 + Math.floor(Math.random() * n);
  const table = `"${schema}".orders`;
  const write =
    kind === 'amount'
      ? (db: Knex) => db.raw(`UPDATE ${table} SET amount_cents = ? WHERE id = ?`, [rand(99_999), rand(rows)])
      : (db: Knex) =>
          db.raw(`UPDATE ${table} SET email = ? WHERE id = ?`, [`Someone${rand(1e9)}@Example.NET`, rand(rows)]);
  let running:
    | {
        waits: ReturnType<typeof watchLockWaits>;
        writer: ReturnType<typeof startLoad>;
        reader: ReturnType<typeof startLoad>;
      }
    | undefined;
  const begin = () => {
    running ??= {
      waits: watchLockWaits(ctx.admin, APP, 10),
      // A little think time: an application, not a load generator that would starve the backfill of CPU.
      writer: startLoad({
        knex: app,
        concurrency: 1,
        pauseMs: 2,
        ops: [
          {
            name: 'write',
            run: async (_i, db) => {
              await write(db);
            },
          },
        ],
      }),
      reader: startLoad({
        knex: app,
        concurrency: 1,
        pauseMs: 2,
        ops: [
          {
            name: 'read',
            run: async (_i, db) => {
              await db.raw(`SELECT * FROM ${table} WHERE id = ?`, [rand(rows)]);
            },
          },
        ],
      }),
    };
  };
  let failure: { error: unknown } | undefined;
  try {
    await body(begin);
  } catch (error) {
    failure = { error };
  }
  begin(); // a body that failed before its window still leaves something to stop
  const w = await running!.writer.stop();
  const r = await running!.reader.stop();
  const lockWait = await running!.waits.stop();
  if (failure) throw failure.error;
  return { read: summary(r, 'read'), write: summary(w, 'write'), lockWait };
}

function summary(report: LoadReport, op: string): LatencySummary {
  const s = report.byOp[op]!;
  return { ops: s.ops, errors: s.errors, p50Ms: s.p50Ms, p99Ms: s.p99Ms, maxMs: s.maxMs };
}
