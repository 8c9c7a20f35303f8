import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { SPAN, defineMigration, isPhaseflagError } from '@phaseflag/core';
import { amountInput, captureSpans, createAmountTable, createSuiteSchema, type Suite } from '@phaseflag/testkit';
import type { Knex } from 'knex';
import { Phaseflag, type LockWait } from '../src/index.js';

/**
 * Expand behind a long transaction, with the default DDL settings: the statement holds back WITHOUT queueing while
 * a transaction older than ddl.longTransactionMs holds the table, so the application's statements never queue
 * behind it; only the race the look cannot see (a long transaction starting between the look and the LOCK) can
 * stall them, for at most lock_timeout.
 */
describe('DDL holds back, without queueing, behind a long transaction', function () {
  this.timeout(60_000);
  const spans = captureSpans();
  let suite: Suite;
  let pf: Phaseflag;
  let blockerKnex: Knex;
  let appKnex: Knex;

  before(async () => {
    suite = await createSuiteSchema('ddl_hold_back');
    pf = new Phaseflag({ knex: suite.knex, stateSchema: suite.stateSchema, pollIntervalMs: 100, graceMs: 0 });
    await pf.install();
    blockerKnex = suite.newKnex({ pool: { min: 0, max: 1 }, applicationName: 'pf-long-report' });
    appKnex = suite.newKnex({ pool: { min: 0, max: 2 }, applicationName: 'pf-app' });
  });
  after(async () => {
    await pf?.close();
    await suite?.cleanup();
  });

  /** An open transaction that read the table (ACCESS SHARE until it ends), already older than longTransactionMs. */
  async function longReport(table: string): Promise<{ trx: Knex.Transaction; pid: number }> {
    const trx = await blockerKnex.transaction();
    await trx.raw('SELECT count(*) FROM ??', [table]);
    const pid = (await trx.raw('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
    await sleep(300);
    return { trx, pid };
  }

  /** The application: one writer updating random rows in a loop; returns its longest statement when stopped. */
  function writer(table: string): { stop: () => Promise<{ ops: number; longestMs: number }> } {
    let running = true;
    let ops = 0;
    let longestMs = 0;
    const loop = (async () => {
      while (running) {
        const t0 = performance.now();
        await appKnex.raw('UPDATE ?? SET amount_cents = amount_cents + 1 WHERE id = ?', [
          table,
          1 + Math.floor(Math.random() * 1000),
        ]);
        longestMs = Math.max(longestMs, performance.now() - t0);
        ops++;
        await sleep(5);
      }
    })();
    return {
      stop: async () => {
        running = false;
        await loop;
        return { ops, longestMs };
      },
    };
  }

  it('expand with the defaults waits out a 3 s transaction without stalling a writer, names the blocker, and completes once it ends', async () => {
    await createAmountTable(suite.knex, 'orders_hold', 1000);
    const migration = defineMigration(amountInput('hold1', 'orders_hold', { ddl: {} }));
    assert.equal(migration.ddl.lockTimeoutMs, 400, 'the default lock_timeout');
    assert.equal(migration.ddl.longTransactionMs, 200, 'the default age of a long transaction');
    const h = pf.migration(migration);
    const blocker = await longReport('orders_hold');
    const app = writer('orders_hold');
    const holdMs = 3000;
    const waits: LockWait[] = [];
    spans.reset();
    const started = Date.now();
    const ended = sleep(holdMs).then(() => blocker.trx.commit());
    try {
      const decision = await h.expand({ onLockWait: (w) => waits.push(w) });
      const took = Date.now() - started;
      assert.equal(decision.to, 'expanded');
      assert.ok(took >= holdMs - 100, `expand finished after ${took} ms, before the long transaction ended`);
    } finally {
      await ended.catch(() => undefined);
    }
    const { ops, longestMs } = await app.stop();
    assert.ok(ops > 50, `only ${ops} writes ran while expand waited`);
    assert.ok(
      longestMs < migration.ddl.lockTimeoutMs,
      `a write stalled ${longestMs.toFixed(1)} ms (lock_timeout ${migration.ddl.lockTimeoutMs} ms)`,
    );
    const heldBack = waits.filter((w) => !w.queued);
    assert.ok(heldBack.length >= 2, `held back and said so about once a second: ${heldBack.length} report(s)`);
    assert.ok(
      heldBack.every((w) => w.blockers.some((b) => b.pid === blocker.pid && b.applicationName === 'pf-long-report')),
    );
    const events = spans
      .byName(SPAN.ddl)
      .flatMap((s) =>
        s.events.filter((e) => e.name === 'lock_wait' && e.attributes?.['phaseflag.lock_wait.queued'] === false),
      );
    assert.ok(events.length >= 2, 'lock_wait span events while holding back');
    assert.match(
      String(events[0]!.attributes?.['phaseflag.lock_wait.blocker_pids']),
      new RegExp(`\\b${blocker.pid}\\b`),
    );
    console.log(
      `      (expand done after ${Date.now() - started} ms; ${ops} writes, longest ${longestMs.toFixed(1)} ms; ${heldBack.length} hold-back reports)`,
    );
  });

  it('short application transactions do not hold it back: expand goes ahead behind them', async () => {
    await createAmountTable(suite.knex, 'orders_busy', 1000);
    const h = pf.migration(defineMigration(amountInput('hold2', 'orders_busy', { ddl: {} })));
    let running = true;
    // Two sessions, each in a 50 ms transaction after another: at any instant one may hold the table, never long.
    const traffic = [0, 1].map(async () => {
      while (running) {
        await appKnex.transaction(async (trx) => {
          await trx.raw('UPDATE ?? SET amount_cents = amount_cents WHERE id = 1 + (random() * 999)::int', [
            'orders_busy',
          ]);
          await trx.raw('SELECT pg_sleep(0.05)');
        });
      }
    });
    const started = Date.now();
    try {
      assert.equal((await h.expand()).to, 'expanded');
    } finally {
      running = false;
      await Promise.all(traffic);
    }
    assert.ok(Date.now() - started < 20_000, `expand took ${Date.now() - started} ms behind short transactions`);
  });

  it('gives up with PF_LOCK_TIMEOUT once holding back has used the lock wait budget, without ever queueing', async () => {
    await createAmountTable(suite.knex, 'orders_stuck', 100);
    const ddl = { lockTimeoutMs: 200, maxAttempts: 3 }; // budget 600 ms
    const h = pf.migration(defineMigration(amountInput('hold3', 'orders_stuck', { ddl })));
    const blocker = await longReport('orders_stuck');
    const app = writer('orders_stuck');
    spans.reset();
    try {
      const error = await h.expand().then(
        () => null,
        (e: unknown) => e,
      );
      assert.ok(isPhaseflagError(error, 'PF_LOCK_TIMEOUT'), `PF_LOCK_TIMEOUT, not ${String(error)}`);
      assert.equal((error as unknown as { attempts: number }).attempts, 0, 'no attempt queued');
      assert.match((error as Error).message, /held back \d+ ms without queueing/);
      assert.match((error as Error).message, new RegExp(`pid ${blocker.pid}`));
    } finally {
      await blocker.trx.rollback();
    }
    const { longestMs } = await app.stop();
    assert.ok(longestMs < 200, `a write stalled ${longestMs.toFixed(1)} ms`);
    const span = spans.byName(SPAN.ddl).find((s) => s.events.some((e) => e.name === 'lock_wait'));
    assert.ok(span && !span.events.some((e) => e.name === 'lock_timeout'), 'no attempt timed out: none was made');
  });
});
