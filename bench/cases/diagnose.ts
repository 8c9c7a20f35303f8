/**
 * Where a backfill batch's time goes, from EXPLAIN (ANALYZE, BUFFERS, WAL): one batch of the engine's UPDATE on
 * a table in dual-write, run inside a transaction that is rolled back, three times on the same rows: with the sync
 * trigger firing, with it skipped as the engine skips it (session_replication_role = replica), and with no trigger
 * on the table at all (dropped inside the rolled-back transaction). The last two differ by what Postgres does for
 * any BEFORE UPDATE row trigger before it decides whether it fires: it locks the row (GetTupleForTrigger in
 * ExecBRUpdateTriggers: heap_lock_tuple and a WAL record), and neither the role nor a WHEN clause avoids that.
 */
import type { BenchContext } from '../lib/context.js';
import { CHANGES, dropSchema, type ChangeKind } from '../lib/orders.js';
import { prepareDualWrite } from './backfill.js';

export interface BatchDiagnosis {
  change: ChangeKind;
  rows: number;
  /** Execution time of the batch UPDATE with the trigger, ms. */
  withTriggerMs: number;
  /** Of which inside the trigger (EXPLAIN's "Triggers" entry), ms. */
  triggerMs: number;
  /** The same UPDATE with the trigger skipped as the engine skips it (session_replication_role = replica), ms. */
  withoutTriggerMs: number;
  /** The same UPDATE with no trigger on the table (dropped in the rolled-back transaction), ms, and its WAL. */
  noTriggerMs: number;
  noTriggerWalBytes: number;
  /** WAL of the skipped-trigger run. */
  skippedWalBytes: number;
  walBytes: number;
  walFpi: number;
  sharedHit: number;
  sharedRead: number;
  plan: string;
}

export async function diagnoseBatch(
  ctx: BenchContext,
  kind: ChangeKind,
  tableRows: number,
  batchRows: number,
): Promise<BatchDiagnosis> {
  const change = CHANGES[kind];
  const schema = ctx.schemaFor(`diag_${kind}`);
  await prepareDualWrite(ctx, change, schema, `diag-${kind}-${schema.slice(-6)}`, tableRows);
  const lo = Math.floor(tableRows / 2);
  const value = `((${change.expression})::${change.newType})`;
  const sql = `UPDATE "${schema}".orders AS t SET ${change.newColumn} = ${value}
                WHERE (t.id) > (${lo}::bigint) AND (t.id) <= (${lo + batchRows}::bigint) AND ((t.${change.newColumn} IS NULL AND t.${change.oldColumn} IS NOT NULL) OR t.${change.newColumn} IS DISTINCT FROM ${value})`;
  // The filter is the engine's (packages/postgres/src/operations/backfill/statements.ts, staleSql).
  // Warm the cache first so the two measurements compare CPU, not disk.
  await ctx.admin.raw(`SELECT count(${change.oldColumn}) FROM "${schema}".orders`);
  const withTrigger = await explainRolledBack(ctx, sql, schema);
  const without = await explainRolledBack(ctx, sql, schema, ['SET LOCAL session_replication_role = replica']);
  const triggers = (
    await ctx.admin.raw(
      `SELECT tgname FROM pg_trigger WHERE tgrelid = ?::regclass AND NOT tgisinternal ORDER BY tgname`,
      [`"${schema}".orders`],
    )
  ).rows as { tgname: string }[];
  const none = await explainRolledBack(
    ctx,
    sql,
    schema,
    triggers.map((t) => `DROP TRIGGER "${t.tgname.replace(/"/g, '""')}" ON "${schema}".orders`),
  );
  await dropSchema(ctx.admin, schema);
  return {
    change: kind,
    rows: batchRows,
    withTriggerMs: withTrigger.ms,
    triggerMs: withTrigger.triggerMs,
    withoutTriggerMs: without.ms,
    noTriggerMs: none.ms,
    noTriggerWalBytes: none.walBytes,
    skippedWalBytes: without.walBytes,
    walBytes: withTrigger.walBytes,
    walFpi: withTrigger.walFpi,
    sharedHit: withTrigger.hit,
    sharedRead: withTrigger.read,
    plan: withTrigger.text,
  };
}

async function explainRolledBack(
  ctx: BenchContext,
  sql: string,
  schema: string,
  setup: readonly string[] = [],
): Promise<{
  ms: number;
  triggerMs: number;
  walBytes: number;
  walFpi: number;
  hit: number;
  read: number;
  text: string;
}> {
  const conn = ctx.db.pool('pfb-diag', 1);
  try {
    await conn.raw('BEGIN');
    await conn.raw(`SET LOCAL search_path = "${schema}", public`);
    for (const statement of setup) await conn.raw(statement);
    const json = (await conn.raw(`EXPLAIN (ANALYZE, BUFFERS, WAL, FORMAT JSON) ${sql}`)).rows[0][
      'QUERY PLAN'
    ][0] as Record<string, unknown>;
    await conn.raw('ROLLBACK');
    const plan = json.Plan as Record<string, number>;
    const triggers = (json.Triggers as { Time: number }[] | undefined) ?? [];
    return {
      ms: Number(json['Execution Time']),
      triggerMs: triggers.reduce((s, t) => s + t.Time, 0),
      walBytes: Number(plan['WAL Bytes'] ?? 0),
      walFpi: Number(plan['WAL FPI'] ?? 0),
      hit: Number(plan['Shared Hit Blocks'] ?? 0),
      read: Number(plan['Shared Read Blocks'] ?? 0),
      text: `${String(json['Execution Time'])} ms; triggers ${JSON.stringify(json.Triggers ?? [])}`,
    };
  } finally {
    await conn.destroy();
  }
}
