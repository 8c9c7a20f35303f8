/**
 * Case 3, the server's side: what the same writes cost per row with no round trip to dilute the trigger (in bulk
 * under EXPLAIN ANALYZE, and one by one in a DO block), the table whose sync trigger lacks the exception blocks,
 * and the one whose sync function does nothing (the floor).
 */
import type { Knex } from 'knex';
import type { BenchContext } from '../lib/context.js';
import type { ChangeKind, migrationFor } from '../lib/orders.js';
import { resolveMigration } from '@phaseflag/postgres/internal';
// Internal on purpose: the unguarded body exists only for this comparison.
import { syncFunctionBody } from '../../packages/postgres/src/operations/steps/sync-function.js';
import { syncFunctionName } from '../../packages/postgres/src/operations/steps/sync-trigger.js';

const BULK_ROWS = 10_000;

/** A bulk write: INSERT, UPDATE of the old column, or UPDATE of `note`, which neither expression reads. */
export type BulkOp = 'INSERT' | 'UPDATE' | 'UPDATE unrelated';

/** Server-side µs per row of a 10k-row write, from EXPLAIN ANALYZE (TIMING OFF) in a transaction rolled back. */
export async function bulkUsPerRow(
  db: Knex,
  schema: string,
  kind: ChangeKind,
  op: BulkOp,
  round: number,
  rows: number,
): Promise<number> {
  const table = `"${schema}".orders`;
  const lo = (round * 37_123) % Math.max(1, rows - BULK_ROWS);
  const sql =
    op === 'UPDATE unrelated'
      ? `UPDATE ${table} SET note = 'x' WHERE id > ${lo} AND id <= ${lo + BULK_ROWS}`
      : op === 'UPDATE'
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
 * dilute it. `unrelated` writes `note`, which neither expression reads (the UPDATE trigger's WHEN clause is false: no
 * function call, only the row lock Postgres takes for any BEFORE UPDATE trigger).
 */
export async function loopUsPerStatement(
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
 * A table in dual-write whose sync function does nothing (`RETURN NEW`), behind the same two triggers and WHEN
 * clause: what Postgres and PL/pgSQL cost before the function does any work, i.e. the floor of any BEFORE row
 * trigger written in PL/pgSQL (a call per row inserted; per row updated, the row lock Postgres takes for a BEFORE
 * UPDATE trigger before it evaluates WHEN, and a call when WHEN holds).
 */
export async function floorDualWrite(ctx: BenchContext, migration: ReturnType<typeof migrationFor>): Promise<void> {
  const m = ctx.pf.migration(migration);
  await m.expand();
  await m.startDualWrite();
  const r = await resolveMigration(ctx.admin, m.migration, { stateSchema: ctx.stateSchema });
  await ctx.admin.raw(
    `CREATE OR REPLACE FUNCTION "${ctx.stateSchema}"."${syncFunctionName(r)}"() RETURNS trigger LANGUAGE plpgsql AS $pf_bench$ BEGIN RETURN NEW; END $pf_bench$`,
  );
}

/**
 * A table in dual-write whose sync function is the same body without the exception blocks, for the bulk
 * comparison only (the migration is never used otherwise; its function is dropped with the bench's state).
 */
export async function unguardedDualWrite(ctx: BenchContext, migration: ReturnType<typeof migrationFor>): Promise<void> {
  const m = ctx.pf.migration(migration);
  await m.expand();
  await m.startDualWrite();
  const r = await resolveMigration(ctx.admin, m.migration, { stateSchema: ctx.stateSchema });
  const body = syncFunctionBody(r, ctx.stateSchema, { guarded: false });
  await ctx.admin.raw(
    `CREATE OR REPLACE FUNCTION "${ctx.stateSchema}"."${syncFunctionName(r)}"() RETURNS trigger LANGUAGE plpgsql AS $pf_bench$${body}$pf_bench$`,
  );
}
