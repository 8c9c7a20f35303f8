/**
 * Where a backfill batch's time goes, from EXPLAIN (ANALYZE, BUFFERS, WAL): one batch of the engine's UPDATE on
 * a table in dual-write, run inside a transaction that is rolled back, with the sync trigger and (on the same
 * rows, again rolled back) without it. The difference is what the trigger costs the backfill per row.
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
  /** The same UPDATE with the trigger disabled, ms. */
  withoutTriggerMs: number;
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
  await ctx.admin.raw(`ALTER TABLE "${schema}".orders DISABLE TRIGGER USER`);
  const without = await explainRolledBack(ctx, sql, schema);
  await ctx.admin.raw(`ALTER TABLE "${schema}".orders ENABLE TRIGGER USER`);
  await dropSchema(ctx.admin, schema);
  return {
    change: kind,
    rows: batchRows,
    withTriggerMs: withTrigger.ms,
    triggerMs: withTrigger.triggerMs,
    withoutTriggerMs: without.ms,
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
