/**
 * Cases 1, 2 and 7: backfill throughput, what the backfill leaves behind, and the backfill's peak RSS. Each size
 * and change is run four ways on identical fresh tables: one UPDATE statement, phaseflag with one worker (default
 * settings), phaseflag with parallel workers, and the hand-written LIMIT/OFFSET loop (capped, then extrapolated).
 */
import type { Knex } from 'knex';
import { runChild } from '../lib/child.js';
import type { BenchContext } from '../lib/context.js';
import { scalar } from '../lib/db.js';
import {
  addColumnSql,
  buildOrders,
  CHANGES,
  dropSchema,
  migrationFor,
  migrationInput,
  singleUpdateSql,
  type Change,
  type ChangeKind,
} from '../lib/orders.js';
import {
  checkpoint,
  relationSizes,
  sampleWaits,
  tableActivity,
  vacuumCount,
  walCounters,
  walDelta,
  type RelationSizes,
  type TableActivity,
  type WaitProfile,
  type WalDelta,
} from '../lib/pg-stats.js';
import { runOffsetLoop, type OffsetLoopResult } from './offset-loop.js';

export type Method = 'single-update' | 'phaseflag-1' | 'phaseflag-n' | 'offset-loop';

export interface BackfillRun {
  method: Method;
  change: ChangeKind;
  rows: number;
  workers: number;
  seconds: number;
  rowsPerSecond: number;
  /** The LIMIT/OFFSET loop only: what was measured before the cap and how the total was extrapolated. */
  offset?: OffsetLoopResult;
  before: RelationSizes;
  after: RelationSizes;
  wal: WalDelta;
  /** WAL of the statement itself, from EXPLAIN (ANALYZE, WAL): the single UPDATE only. */
  statementWalBytes?: number;
  statementWalFpi?: number;
  activity: TableActivity;
  /** VACUUMs of the table during the run (pg_stat_user_tables vacuum_count, after minus before). */
  vacuumsDuring: number;
  waits?: WaitProfile;
  /** Peak RSS of the process that ran the backfill (phaseflag runs, in a child process). */
  peakRss?: number | null;
  rssBefore?: number | null;
  /** The child's heap after a full garbage collection, before and after the backfill (phaseflag runs). */
  heapBefore?: number | null;
  heapAfter?: number | null;
  batches?: number;
  /** What the engine said of its run (phaseflag runs). */
  engine?: EngineResult;
  /** Every row holds the expression's value afterwards (checked by a full scan). */
  correct: boolean;
}

/** The part of the engine's BackfillResult the report uses. */
export interface EngineResult {
  completed: boolean;
  batches: number;
  durationMs: number;
  vacuums?: number;
  vacuumMs?: number;
  batchesWithoutTriggers?: number;
  /** Indexes rebuilt once the backfill completed (REINDEX INDEX CONCURRENTLY), and their time, inside durationMs. */
  reindexes?: number;
  reindexMs?: number;
}

export interface BackfillCase {
  runs: BackfillRun[];
  /**
   * The same rows with the new column filled, written fresh and every index of the table built on them: the least
   * any method can leave (largest size).
   */
  floors: Partial<Record<ChangeKind, RelationSizes & { rows: number; beforeTotal: number; beforeHeap: number }>>;
}

export async function runBackfillCase(
  ctx: BenchContext,
  options: { changes: readonly ChangeKind[]; offsetCapMs: number },
): Promise<BackfillCase> {
  const runs: BackfillRun[] = [];
  const floors: BackfillCase['floors'] = {};
  for (const rows of ctx.sizes) {
    for (const kind of options.changes) {
      const change = CHANGES[kind];
      runs.push(await singleUpdate(ctx, change, rows));
      const largest = rows === ctx.sizes[ctx.sizes.length - 1];
      runs.push(
        await phaseflagRun(
          ctx,
          change,
          rows,
          1,
          largest
            ? async (schema, before) => {
                floors[kind] = {
                  ...(await floorSizes(ctx.admin, schema)),
                  rows,
                  beforeTotal: before.total,
                  beforeHeap: before.heap,
                };
              }
            : undefined,
        ),
      );
      runs.push(await phaseflagRun(ctx, change, rows, ctx.workers));
      runs.push(await offsetRun(ctx, change, rows, options.offsetCapMs));
    }
  }
  return { runs, floors };
}

async function singleUpdate(ctx: BenchContext, change: Change, rows: number): Promise<BackfillRun> {
  const schema = ctx.schemaFor(`single_${change.kind}_${rows}`);
  await buildOrders(ctx.admin, schema, rows);
  const before = await relationSizes(ctx.admin, schema);
  await ctx.admin.raw(addColumnSql(change, schema));
  const vacuums0 = await vacuumCount(ctx.admin, schema);
  await checkpoint(ctx.admin);
  ctx.log(`  single UPDATE, ${change.kind}, ${rows} rows`);
  const wal0 = await walCounters(ctx.admin);
  const conn = ctx.db.pool('pfb-single', 1);
  const waits = sampleWaits(ctx.admin, 'pfb-single');
  const started = performance.now();
  // EXPLAIN ANALYZE runs the statement in full; TIMING OFF keeps per-row clock reads out of its run time, and
  // WAL reports the statement's own WAL, free of other sessions'.
  const plan = (
    await conn.raw(`EXPLAIN (ANALYZE, BUFFERS, WAL, TIMING OFF, FORMAT JSON) ${singleUpdateSql(change, schema)}`)
  ).rows[0]['QUERY PLAN'][0];
  const seconds = (performance.now() - started) / 1000;
  const profile = await waits.stop();
  await conn.destroy();
  const wal = await walDelta(ctx.admin, wal0);
  const run: BackfillRun = {
    method: 'single-update',
    change: change.kind,
    rows,
    workers: 1,
    seconds,
    rowsPerSecond: rows / seconds,
    before,
    after: await relationSizes(ctx.admin, schema),
    wal,
    statementWalBytes: Number(plan.Plan['WAL Bytes'] ?? 0),
    statementWalFpi: Number(plan.Plan['WAL FPI'] ?? 0),
    activity: await tableActivity(ctx.admin, schema),
    waits: profile,
    correct: await allCorrect(ctx.admin, change, schema),
    vacuumsDuring: 0,
  };
  run.vacuumsDuring = run.activity.vacuumCount + run.activity.autovacuumCount - vacuums0;
  await dropSchema(ctx.admin, schema);
  return run;
}

/** Expand and dual-write in this process, the backfill in a child (its peak RSS is the backfill's alone). */
export async function prepareDualWrite(
  ctx: BenchContext,
  change: Change,
  schema: string,
  id: string,
  rows: number,
): Promise<RelationSizes> {
  await buildOrders(ctx.admin, schema, rows);
  const before = await relationSizes(ctx.admin, schema);
  const m = ctx.pf.migration(migrationFor(change, id, schema));
  await m.expand();
  await m.startDualWrite();
  return before;
}

async function phaseflagRun(
  ctx: BenchContext,
  change: Change,
  rows: number,
  workers: number,
  afterRun?: (schema: string, before: RelationSizes) => Promise<void>,
): Promise<BackfillRun> {
  const method: Method = workers === 1 ? 'phaseflag-1' : 'phaseflag-n';
  const schema = ctx.schemaFor(`pf${workers}_${change.kind}_${rows}`);
  const id = `${change.kind}-${rows}-w${workers}-${schema.slice(-6)}`;
  const before = await prepareDualWrite(ctx, change, schema, id, rows);
  const vacuums0 = await vacuumCount(ctx.admin, schema);
  await checkpoint(ctx.admin);
  ctx.log(`  phaseflag backfill, ${workers} worker(s), ${change.kind}, ${rows} rows`);
  const wal0 = await walCounters(ctx.admin);
  const waits = sampleWaits(ctx.admin, 'pfb-backfill');
  const child = await runChild<{
    wallMs: number;
    result: EngineResult;
    peakRss: number | null;
    rssBefore: number | null;
    heapBefore: number | null;
    heapAfter: number | null;
  }>(
    'backfill',
    {
      url: ctx.db.url,
      stateSchema: ctx.stateSchema,
      migration: migrationInput(change, id, schema),
      workers,
      applicationName: 'pfb-backfill',
    },
    { nodeArgs: ['--expose-gc'] },
  );
  const profile = await waits.stop();
  const wal = await walDelta(ctx.admin, wal0);
  if (!child.result.completed) throw new Error(`phaseflag backfill ${id} did not complete`);
  // The rows/s of case 1 are the backfill's own: the rebuild of the indexes it bloated, which runs after it (the
  // single UPDATE leaves them bloated too), is reported apart (engine.reindexMs, section 2).
  const seconds = (child.wallMs - (child.result.reindexMs ?? 0)) / 1000;
  const run: BackfillRun = {
    method,
    change: change.kind,
    rows,
    workers,
    seconds,
    rowsPerSecond: rows / seconds,
    before,
    after: await relationSizes(ctx.admin, schema),
    wal,
    activity: await tableActivity(ctx.admin, schema),
    waits: profile,
    peakRss: child.peakRss,
    rssBefore: child.rssBefore,
    heapBefore: child.heapBefore,
    heapAfter: child.heapAfter,
    batches: child.result.batches,
    engine: child.result,
    correct: await allCorrect(ctx.admin, change, schema),
    vacuumsDuring: 0,
  };
  run.vacuumsDuring = run.activity.vacuumCount + run.activity.autovacuumCount - vacuums0;
  await afterRun?.(schema, before);
  await dropSchema(ctx.admin, schema);
  return run;
}

async function offsetRun(ctx: BenchContext, change: Change, rows: number, capMs: number): Promise<BackfillRun> {
  const schema = ctx.schemaFor(`offset_${change.kind}_${rows}`);
  await buildOrders(ctx.admin, schema, rows);
  const before = await relationSizes(ctx.admin, schema);
  await ctx.admin.raw(addColumnSql(change, schema));
  const vacuums0 = await vacuumCount(ctx.admin, schema);
  await checkpoint(ctx.admin);
  ctx.log(`  LIMIT/OFFSET loop, ${change.kind}, ${rows} rows (capped at ${capMs / 1000} s)`);
  const wal0 = await walCounters(ctx.admin);
  const knex = ctx.db.pool('pfb-offset', 2);
  const offset = await runOffsetLoop(knex, change, schema, rows, capMs);
  await knex.destroy();
  const wal = await walDelta(ctx.admin, wal0);
  const run: BackfillRun = {
    method: 'offset-loop',
    change: change.kind,
    rows,
    workers: 1,
    seconds: offset.totalSeconds,
    rowsPerSecond: rows / offset.totalSeconds,
    offset,
    before,
    after: await relationSizes(ctx.admin, schema),
    wal,
    activity: await tableActivity(ctx.admin, schema),
    correct: offset.completed ? await allCorrect(ctx.admin, change, schema) : true,
    vacuumsDuring: 0,
  };
  run.vacuumsDuring = run.activity.vacuumCount + run.activity.autovacuumCount - vacuums0;
  await dropSchema(ctx.admin, schema);
  return run;
}

async function allCorrect(knex: Knex, change: Change, schema: string): Promise<boolean> {
  const wrong = await scalar<number>(
    knex,
    `SELECT count(*)::int FROM "${schema}".orders WHERE ${change.newColumn} IS DISTINCT FROM (${change.expression})::${change.newType}`,
  );
  return wrong === 0;
}

/**
 * The same rows copied into a fresh table, then every index of the table built on the copy (the primary key's as a
 * unique index: the same btree): no dead tuples, no free space, no index page split by updates.
 */
async function floorSizes(knex: Knex, schema: string): Promise<RelationSizes> {
  await knex.raw(`CREATE TABLE "${schema}".floor AS SELECT * FROM "${schema}".orders`);
  const defs = (
    await knex.raw(
      `SELECT pg_get_indexdef(i.indexrelid) AS def FROM pg_index i WHERE i.indrelid = ?::regclass ORDER BY i.indexrelid`,
      [`"${schema}".orders`],
    )
  ).rows as { def: string }[];
  for (const [n, { def }] of defs.entries()) {
    const onFloor = def.replace(
      /^(CREATE (?:UNIQUE )?INDEX) \S+ ON \S+ USING/,
      `$1 floor_${n} ON "${schema}".floor USING`,
    );
    if (onFloor === def) throw new Error(`cannot rebuild ${def} on the copy`);
    await knex.raw(onFloor);
  }
  return relationSizes(knex, schema, 'floor');
}
