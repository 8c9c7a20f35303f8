/**
 * Case 5: expand behind a long transaction. A transaction holds an ACCESS SHARE lock on the table (a long report,
 * an idle-in-transaction session) while the application keeps querying; it ends `holdMs` after the first
 * application statement queues behind the DDL, so "the application stalls for the whole transaction" reads as
 * a stall of at least `holdMs`. A plain `ALTER TABLE … ADD COLUMN` queues
 * for ACCESS EXCLUSIVE behind it, and every application statement that arrives afterwards queues behind the
 * ALTER: the application stalls until the long transaction ends. phaseflag's expand holds back without queueing
 * while a long transaction holds a conflicting lock (ddl-hold-back.ts), then takes the lock with lock_timeout and
 * retries with back-off, so any queue it causes lasts at most lock_timeout per attempt. Its run uses the defaults.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { captureSpans, startLoad } from '@phaseflag/testkit';
import type { BenchContext } from '../lib/context.js';
import { buildOrders, CHANGES, dropSchema, migrationFor } from '../lib/orders.js';
import { watchLockWaits, type LockWaitReport } from '../lib/pg-stats.js';

export interface ExpandRun {
  variant: 'plain-alter' | 'phaseflag-expand';
  /** How long the long transaction kept its lock after the first application statement queued behind the DDL. */
  holdMs: number;
  /** lock_timeout of phaseflag's DDL (null for the plain ALTER, which has none). */
  lockTimeoutMs: number | null;
  /** Longest application statement (read or write) while the DDL ran. */
  longestStallMs: number;
  appOps: number;
  appErrors: number;
  lockWait: LockWaitReport;
  /** From the DDL's start to its success. */
  ddlSeconds: number;
  /** When, after the DDL started, the first application statement was seen queued (null: none within a second). */
  queuedAfterMs: number | null;
  /** phaseflag's attempts (lock_timeout expiries + the one that succeeded). */
  attempts: number | null;
}

const APP = 'pfb-app-expand';

export async function runExpandLock(ctx: BenchContext, options: { holdMs: number }): Promise<ExpandRun[]> {
  const spans = captureSpans();
  const runs: ExpandRun[] = [];
  for (const variant of ['plain-alter', 'phaseflag-expand'] as const) {
    const schema = ctx.schemaFor(`expand_${variant.replace('-', '_')}`);
    await buildOrders(ctx.admin, schema, 10_000);
    const change = CHANGES.amount;
    const migration = migrationFor(change, `expand-${schema.slice(-8)}`, schema);
    ctx.log(`  expand behind a ${options.holdMs / 1000} s transaction: ${variant}`);
    const app = ctx.db.pool(APP, 2);
    const blocker = ctx.db.pool('pfb-long-transaction', 1);
    const ddl = ctx.db.pool('pfb-plain-ddl', 1);
    const rand = (n: number) => 1 + Math.floor(Math.random() * n);
    const table = `"${schema}".orders`;
    try {
      await blocker.raw('BEGIN');
      await blocker.raw(`SELECT count(*) FROM ${table} WHERE id = 1`); // ACCESS SHARE until COMMIT
      const waits = watchLockWaits(ctx.admin, APP, 10);
      const load = startLoad({
        knex: app,
        concurrency: 2,
        pauseMs: 5,
        ops: [
          {
            name: 'read',
            run: async (_i, db) => {
              await db.raw(`SELECT * FROM ${table} WHERE id = ?`, [rand(10_000)]);
            },
          },
          {
            name: 'write',
            run: async (_i, db) => {
              await db.raw(`UPDATE ${table} SET customer_id = ? WHERE id = ?`, [rand(1000), rand(10_000)]);
            },
          },
        ],
      });
      await sleep(300);
      spans.reset();
      const started = performance.now();
      // The transaction holds its lock for holdMs from the moment the hazard begins: the first application
      // statement seen queued behind the DDL (or, should none queue within a second, from the DDL's start).
      const release = waitForFirstQueued(ctx, APP, 1000).then((queuedAfterMs) =>
        sleep(options.holdMs).then(async () => {
          await blocker.raw('COMMIT');
          return queuedAfterMs;
        }),
      );
      if (variant === 'plain-alter')
        await ddl.raw(`ALTER TABLE ${table} ADD COLUMN ${change.newColumn} ${change.newType}`);
      else await ctx.pf.migration(migration).expand();
      const ddlSeconds = (performance.now() - started) / 1000;
      const queuedAfterMs = await release;
      await sleep(300);
      const report = await load.stop();
      const lockWait = await waits.stop();
      const ddlSpans = spans.byName('phaseflag.ddl');
      runs.push({
        variant,
        holdMs: options.holdMs,
        lockTimeoutMs: variant === 'plain-alter' ? null : migration.ddl.lockTimeoutMs,
        longestStallMs: Math.max(...Object.values(report.byOp).map((o) => o.maxMs)),
        appOps: report.ops,
        appErrors: report.errors,
        lockWait,
        ddlSeconds,
        queuedAfterMs,
        attempts:
          variant === 'plain-alter'
            ? null
            : ddlSpans.reduce((n, s) => n + Number(s.attributes['phaseflag.retry.attempts'] ?? 1), 0),
      });
    } finally {
      await blocker.raw('ROLLBACK').catch(() => undefined);
      await Promise.all([app.destroy(), blocker.destroy(), ddl.destroy()]);
      await dropSchema(ctx.admin, schema);
    }
  }
  return runs;
}

/** Resolves with the ms until an application statement is first seen waiting on a lock, or null after `maxMs`. */
async function waitForFirstQueued(ctx: BenchContext, prefix: string, maxMs: number): Promise<number | null> {
  const started = performance.now();
  while (performance.now() - started < maxMs) {
    const n = (
      await ctx.admin.raw(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name LIKE ? AND wait_event_type = 'Lock'",
        [`${prefix}%`],
      )
    ).rows[0].n as number;
    if (n > 0) return performance.now() - started;
    await sleep(5);
  }
  return null;
}
