/**
 * Case 3: what dual-write costs an application write. The same UPDATE and INSERT run against two identical
 * tables, one before expand and one in dual-write, alternating in rounds so that machine noise hits both alike:
 *
 * - router: the statement an embedding service builds with knex, `router.row(values)` during dual-write (the
 *   old column as supplied; the live sync trigger derives the new one, recording a value it cannot derive
 *   instead of failing the write) against the plain values before expand;
 * - trigger: a plain-SQL writer that knows nothing of phaseflag (the sync trigger fills the new column) against
 *   the same SQL before expand.
 *
 * Each figure is the median over rounds of the mean latency of `perRound` single-row statements on one
 * connection, as the application sees it (round trip included). Beside it, the server-side cost per row of the
 * same writes in bulk (10k rows per statement, EXPLAIN ANALYZE in a rolled-back transaction): the trigger's own
 * cost without the round trip that dilutes it, which is what pgroll's benchmark reports as rows/s; and the same
 * again on a third table whose trigger lacks the exception blocks, for what those blocks cost per row. And single-row
 * UPDATEs in a server-side loop (one DO block): the trigger's cost per statement without the round trip, on an
 * UPDATE of the old column and on one of a column neither expression reads.
 */
import { StaticFlagSource } from '@phaseflag/core';
import type { Knex } from 'knex';
import type { BenchContext } from '../lib/context.js';
import { buildOrders, CHANGES, dropSchema, migrationFor, type ChangeKind } from '../lib/orders.js';
import { median } from '../lib/stats.js';
import { timeRound, writer } from './write-amplification-app.js';
import {
  bulkUsPerRow,
  floorDualWrite,
  loopUsPerStatement,
  unguardedDualWrite,
  type BulkOp,
} from './write-amplification-server.js';

export interface WriteCost {
  change: ChangeKind;
  path: 'router' | 'trigger';
  op: 'UPDATE' | 'INSERT';
  /** Mean latency of one statement, µs: before expand, and during dual-write. */
  beforeUs: number;
  dualWriteUs: number;
  ratio: number;
}

export interface BulkCost {
  change: ChangeKind;
  /** 'UPDATE' writes the old column; 'UPDATE unrelated' writes `note` (absent from runs made before it was measured). */
  op: BulkOp;
  /** No trigger (before expand). */
  beforeUsPerRow: number;
  /** The sync trigger as installed: each derivation in an exception block, so a row it cannot derive never fails the write. */
  dualWriteUsPerRow: number;
  /** The same trigger without the exception blocks (a failing derivation would fail the write): what the blocks cost. */
  unguardedUsPerRow?: number;
  /**
   * The same triggers calling a function that only returns NEW: the floor of a PL/pgSQL BEFORE row trigger
   * (absent from runs made before it was measured).
   */
  floorUsPerRow?: number;
  ratio: number;
}

/** Single-row UPDATEs run one after the other inside a DO block: per statement, no round trip. */
export interface LoopCost {
  change: ChangeKind;
  /** What each UPDATE writes: the migration's old column, or `note`, which neither expression reads. */
  column: 'old' | 'unrelated';
  statements: number;
  /** µs per UPDATE before expand (no trigger) and during dual-write. */
  beforeUs: number;
  dualWriteUs: number;
  ratio: number;
}

export interface WriteAmplificationCase {
  rows: number;
  rounds: number;
  perRound: number;
  statements: WriteCost[];
  bulk: BulkCost[];
  /** Absent from runs made before it was measured (a report re-rendered from their figures). */
  loop?: LoopCost[];
}

const LOOP_STATEMENTS = 5_000;

export async function runWriteAmplification(
  ctx: BenchContext,
  options: { changes: readonly ChangeKind[]; rows: number; rounds: number; perRound: number },
): Promise<WriteAmplificationCase> {
  const statements: WriteCost[] = [];
  const bulk: BulkCost[] = [];
  const loop: LoopCost[] = [];
  for (const kind of options.changes) {
    const change = CHANGES[kind];
    const plainSchema = ctx.schemaFor(`wa_plain_${kind}`);
    const dwSchema = ctx.schemaFor(`wa_dw_${kind}`);
    const rawSchema = ctx.schemaFor(`wa_raw_${kind}`);
    const floorSchema = ctx.schemaFor(`wa_floor_${kind}`);
    await buildOrders(ctx.admin, plainSchema, options.rows);
    await buildOrders(ctx.admin, dwSchema, options.rows);
    await buildOrders(ctx.admin, rawSchema, options.rows);
    await buildOrders(ctx.admin, floorSchema, options.rows);
    const m = ctx.pf.migration(migrationFor(change, `wa-${kind}-${dwSchema.slice(-8)}`, dwSchema));
    await m.expand();
    await m.startDualWrite();
    await unguardedDualWrite(ctx, migrationFor(change, `wa-raw-${kind}-${rawSchema.slice(-8)}`, rawSchema));
    await floorDualWrite(ctx, migrationFor(change, `wa-floor-${kind}-${floorSchema.slice(-8)}`, floorSchema));
    const router = await m.router(new StaticFlagSource(), { heartbeatMs: 0 });
    const app = ctx.db.pool('pfb-app-wa', 1);
    ctx.log(`  write amplification, ${kind}: ${options.rounds} rounds × ${options.perRound} statements per variant`);
    try {
      for (const op of ['UPDATE', 'INSERT'] as const) {
        for (const path of ['router', 'trigger'] as const) {
          const before = writer(app, plainSchema, kind, op, path, null);
          const during = writer(app, dwSchema, kind, op, path, router);
          const b: number[] = [];
          const d: number[] = [];
          for (let round = 0; round < options.rounds; round++) {
            // Alternate which side goes first, so neither always runs on a cache the other warmed.
            const order =
              round % 2
                ? ([
                    [during, d],
                    [before, b],
                  ] as const)
                : ([
                    [before, b],
                    [during, d],
                  ] as const);
            for (const [run, out] of order) out.push(await timeRound(run, options.perRound, round, options.rows));
          }
          const beforeUs = median(b);
          const dualWriteUs = median(d);
          statements.push({ change: kind, path, op, beforeUs, dualWriteUs, ratio: dualWriteUs / beforeUs });
        }
        bulk.push(await bulkCost(app, kind, op, { plainSchema, dwSchema, rawSchema, floorSchema }, options));
      }
      // An UPDATE of a column neither expression reads: the trigger's WHEN clause keeps its function from being called.
      bulk.push(
        await bulkCost(app, kind, 'UPDATE unrelated', { plainSchema, dwSchema, rawSchema, floorSchema }, options),
      );
      const n = Math.min(LOOP_STATEMENTS, options.rows);
      for (const column of ['old', 'unrelated'] as const) {
        const lp: number[] = [];
        const ld: number[] = [];
        for (let round = 0; round < Math.max(3, Math.ceil(options.rounds / 2)); round++) {
          // Alternate which side goes first, as above.
          const order =
            round % 2
              ? ([
                  [dwSchema, ld],
                  [plainSchema, lp],
                ] as const)
              : ([
                  [plainSchema, lp],
                  [dwSchema, ld],
                ] as const);
          for (const [schema, out] of order)
            out.push(await loopUsPerStatement(app, schema, kind, column, n, round, options.rows));
        }
        loop.push({
          change: kind,
          column,
          statements: n,
          beforeUs: median(lp),
          dualWriteUs: median(ld),
          ratio: median(ld) / median(lp),
        });
      }
    } finally {
      await router.close();
      await app.destroy();
      await dropSchema(ctx.admin, plainSchema);
      await dropSchema(ctx.admin, dwSchema);
      await dropSchema(ctx.admin, rawSchema);
      await dropSchema(ctx.admin, floorSchema);
    }
  }
  return { rows: options.rows, rounds: options.rounds, perRound: options.perRound, statements, bulk, loop };
}

/** One bulk statement on the four tables, alternating in rounds; medians of µs per row. */
async function bulkCost(
  app: Knex,
  kind: ChangeKind,
  op: BulkOp,
  s: { plainSchema: string; dwSchema: string; rawSchema: string; floorSchema: string },
  options: { rows: number; rounds: number },
): Promise<BulkCost> {
  const bp: number[] = [];
  const bd: number[] = [];
  const bu: number[] = [];
  const bf: number[] = [];
  for (let round = 0; round < Math.max(3, Math.ceil(options.rounds / 2)); round++) {
    bp.push(await bulkUsPerRow(app, s.plainSchema, kind, op, round, options.rows));
    bd.push(await bulkUsPerRow(app, s.dwSchema, kind, op, round, options.rows));
    bu.push(await bulkUsPerRow(app, s.rawSchema, kind, op, round, options.rows));
    bf.push(await bulkUsPerRow(app, s.floorSchema, kind, op, round, options.rows));
  }
  return {
    change: kind,
    op,
    beforeUsPerRow: median(bp),
    dualWriteUsPerRow: median(bd),
    unguardedUsPerRow: median(bu),
    floorUsPerRow: median(bf),
    ratio: median(bd) / median(bp),
  };
}
