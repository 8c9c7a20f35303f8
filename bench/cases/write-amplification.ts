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
import type { KnexRouter } from '@phaseflag/postgres';
import type { Knex } from 'knex';
import type { BenchContext } from '../lib/context.js';
import { buildOrders, CHANGES, dropSchema, migrationFor, type ChangeKind } from '../lib/orders.js';
import { median, prng } from '../lib/stats.js';
import { resolveMigration } from '@phaseflag/postgres/internal';
// Internal on purpose: the unguarded body exists only for this comparison.
import { syncFunctionBody } from '../../packages/postgres/src/operations/steps/sync-function.js';
import { syncFunctionName } from '../../packages/postgres/src/operations/steps/sync-trigger.js';

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
  op: 'UPDATE' | 'INSERT';
  /** No trigger (before expand). */
  beforeUsPerRow: number;
  /** The sync trigger as installed: each derivation in an exception block, so a row it cannot derive never fails the write. */
  dualWriteUsPerRow: number;
  /** The same trigger without the exception blocks (a failing derivation would fail the write): what the blocks cost. */
  unguardedUsPerRow?: number;
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

const BULK_ROWS = 10_000;
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
    await buildOrders(ctx.admin, plainSchema, options.rows);
    await buildOrders(ctx.admin, dwSchema, options.rows);
    await buildOrders(ctx.admin, rawSchema, options.rows);
    const m = ctx.pf.migration(migrationFor(change, `wa-${kind}-${dwSchema.slice(-8)}`, dwSchema));
    await m.expand();
    await m.startDualWrite();
    await unguardedDualWrite(ctx, migrationFor(change, `wa-raw-${kind}-${rawSchema.slice(-8)}`, rawSchema));
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
        const bp: number[] = [];
        const bd: number[] = [];
        const bu: number[] = [];
        for (let round = 0; round < Math.max(3, Math.ceil(options.rounds / 2)); round++) {
          bp.push(await bulkUsPerRow(app, plainSchema, kind, op, round, options.rows));
          bd.push(await bulkUsPerRow(app, dwSchema, kind, op, round, options.rows));
          bu.push(await bulkUsPerRow(app, rawSchema, kind, op, round, options.rows));
        }
        bulk.push({
          change: kind,
          op,
          beforeUsPerRow: median(bp),
          dualWriteUsPerRow: median(bd),
          unguardedUsPerRow: median(bu),
          ratio: median(bd) / median(bp),
        });
      }
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
    }
  }
  return { rows: options.rows, rounds: options.rounds, perRound: options.perRound, statements, bulk, loop };
}

type Write = (id: number, value: number) => Promise<unknown>;

/** The application's statement: through knex with router.row() (or the plain values), or raw SQL. */
function writer(
  db: Knex,
  schema: string,
  kind: ChangeKind,
  op: 'UPDATE' | 'INSERT',
  path: 'router' | 'trigger',
  router: KnexRouter | null,
): Write {
  const table = `${schema}.orders`;
  const row = (values: Record<string, unknown>) => (router ? router.row(values) : values);
  const email = (v: number) => `Customer${v}@Example.ORG`;
  if (path === 'router') {
    if (op === 'UPDATE') {
      return kind === 'amount'
        ? (id, v) =>
            db(table)
              .update(row({ amount_cents: v }))
              .where('id', id)
        : (id, v) =>
            db(table)
              .update(row({ email: email(v) }))
              .where('id', id);
    }
    return (_id, v) => db(table).insert(row({ customer_id: (v % 1000) + 1, amount_cents: v, email: email(v) }));
  }
  // A writer that bypasses phaseflag: the same SQL on both tables, the trigger fills the new column.
  if (op === 'UPDATE') {
    return kind === 'amount'
      ? (id, v) => db.raw(`UPDATE ${table} SET amount_cents = ? WHERE id = ?`, [v, id])
      : (id, v) => db.raw(`UPDATE ${table} SET email = ? WHERE id = ?`, [email(v), id]);
  }
  return (_id, v) =>
    db.raw(`INSERT INTO ${table} (customer_id, amount_cents, email) VALUES (?, ?, ?)`, [(v % 1000) + 1, v, email(v)]);
}

/** Mean µs per statement over one round; both variants of a round get the same ids and values. */
async function timeRound(run: Write, n: number, round: number, rows: number): Promise<number> {
  const rand = prng(1000 + round);
  const args = Array.from({ length: n }, () => [1 + Math.floor(rand() * rows), Math.floor(rand() * 99_999)] as const);
  const started = performance.now();
  for (const [id, v] of args) await run(id, v);
  return ((performance.now() - started) * 1000) / n;
}

/** Server-side µs per row of a 10k-row write, from EXPLAIN ANALYZE (TIMING OFF) in a transaction rolled back. */
async function bulkUsPerRow(
  db: Knex,
  schema: string,
  kind: ChangeKind,
  op: 'UPDATE' | 'INSERT',
  round: number,
  rows: number,
): Promise<number> {
  const table = `"${schema}".orders`;
  const lo = (round * 37_123) % Math.max(1, rows - BULK_ROWS);
  const sql =
    op === 'UPDATE'
      ? kind === 'amount'
        ? `UPDATE ${table} SET amount_cents = (amount_cents + 1) % 100000 WHERE id > ${lo} AND id <= ${lo + BULK_ROWS}`
        : `UPDATE ${table} SET email = upper(email) WHERE id > ${lo} AND id <= ${lo + BULK_ROWS}`
      : `INSERT INTO ${table} (customer_id, amount_cents, email) SELECT g % 1000 + 1, g % 100000, 'New' || g || '@Example.ORG' FROM generate_series(1, ${BULK_ROWS}) AS g`;
  // db is a pool of one connection, so BEGIN, the statement and ROLLBACK run on the same session.
  await db.raw('BEGIN');
  try {
    const plan = (await db.raw(`EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) ${sql}`)).rows[0]['QUERY PLAN'][0] as {
      'Execution Time': number;
    };
    return (plan['Execution Time'] * 1000) / BULK_ROWS;
  } finally {
    await db.raw('ROLLBACK');
  }
}

/**
 * µs per single-row UPDATE of `n` run one after the other in a DO block (timed around it, in a transaction rolled
 * back): what each statement costs the server, before expand or with the sync trigger, with no round trip to
 * dilute it. `unrelated` writes `note`, which neither expression reads (the trigger fires all the same).
 */
async function loopUsPerStatement(
  db: Knex,
  schema: string,
  kind: ChangeKind,
  column: 'old' | 'unrelated',
  n: number,
  round: number,
  rows: number,
): Promise<number> {
  const table = `"${schema}".orders`;
  const lo = (round * 37_123) % Math.max(1, rows - n);
  const set =
    column === 'unrelated'
      ? "note = 'x'"
      : kind === 'amount'
        ? 'amount_cents = (amount_cents + 1) % 100000'
        : 'email = upper(email)';
  // db is a pool of one connection, so BEGIN, the block and ROLLBACK run on the same session.
  await db.raw('BEGIN');
  try {
    const started = performance.now();
    await db.raw(
      `DO $pf_bench$ BEGIN FOR i IN ${lo + 1}..${lo + n} LOOP UPDATE ${table} SET ${set} WHERE id = i; END LOOP; END $pf_bench$`,
    );
    return ((performance.now() - started) * 1000) / n;
  } finally {
    await db.raw('ROLLBACK');
  }
}

/**
 * A table in dual-write whose sync function is the same body without the exception blocks, for the bulk
 * comparison only (the migration is never used otherwise; its function is dropped with the bench's state).
 */
async function unguardedDualWrite(ctx: BenchContext, migration: ReturnType<typeof migrationFor>): Promise<void> {
  const m = ctx.pf.migration(migration);
  await m.expand();
  await m.startDualWrite();
  const r = await resolveMigration(ctx.admin, m.migration, { stateSchema: ctx.stateSchema });
  const body = syncFunctionBody(r, ctx.stateSchema, { guarded: false });
  await ctx.admin.raw(
    `CREATE OR REPLACE FUNCTION "${ctx.stateSchema}"."${syncFunctionName(r)}"() RETURNS trigger LANGUAGE plpgsql AS $pf_bench$${body}$pf_bench$`,
  );
}
