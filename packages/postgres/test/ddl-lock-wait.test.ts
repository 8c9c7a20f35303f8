import assert from 'node:assert/strict';
import { defineMigration, isPhaseflagError } from '@phaseflag/core';
import { amountInput, captureSpans, createAmountTable, createSuiteSchema, type Suite } from '@phaseflag/testkit';
import type { Knex } from 'knex';
import { Phaseflag, type LockWait } from '../src/index.js';

// longTransactionMs null: every attempt queues, so each reports its own wait (ddl-hold-back.test.ts: holding back).
const DDL = { lockTimeoutMs: 400, maxAttempts: 4, retryBaseMs: 150, retryMaxMs: 300, longTransactionMs: null };

describe('DDL lock waits: who blocks is reported as it happens, within the bound plan gives', function () {
  this.timeout(60_000);
  const spans = captureSpans();
  let suite: Suite;
  let pf: Phaseflag;
  let blockerKnex: Knex;

  before(async () => {
    suite = await createSuiteSchema('ddl_lock_wait');
    pf = new Phaseflag({ knex: suite.knex, stateSchema: suite.stateSchema, pollIntervalMs: 100, graceMs: 0 });
    await pf.install();
    blockerKnex = suite.newKnex({ pool: { min: 0, max: 2 }, applicationName: 'pf-blocker' });
  });
  after(async () => {
    await pf?.close();
    await suite?.cleanup();
  });

  /** An open transaction that has read the table: ADD COLUMN's ACCESS EXCLUSIVE waits behind its ACCESS SHARE. */
  async function holdTable(table: string): Promise<{ trx: Knex.Transaction; pid: number }> {
    const trx = await blockerKnex.transaction();
    await trx.raw('SELECT count(*) FROM ??', [table]);
    return { trx, pid: (await trx.raw('SELECT pg_backend_pid() AS pid')).rows[0].pid as number };
  }

  it('an expand behind an open transaction reports the blocker (pid, application, transaction start) and gives up within plan’s bound', async () => {
    await createAmountTable(suite.knex, 'orders_wait', 100);
    const h = pf.migration(defineMigration(amountInput('wait1', 'orders_wait', { ddl: DDL })));
    const plan = await h.plan();
    const addColumn = plan.phases[0]!.statements.find((s) => s.step === 'add-column')!;
    assert.equal(addColumn.maxLockWaitMs, DDL.lockTimeoutMs * DDL.maxAttempts);
    assert.equal(addColumn.maxDurationMs, addColumn.maxLockWaitMs + 150 + 300 + 300, 'lock waits plus back-off');
    const blocker = await holdTable('orders_wait');
    const waits: Array<LockWait & { at: number }> = [];
    spans.reset();
    const started = Date.now();
    try {
      const error = await h.expand({ onLockWait: (w) => waits.push({ ...w, at: Date.now() }) }).then(
        () => null,
        (e: unknown) => e,
      );
      const took = Date.now() - started;
      assert.ok(isPhaseflagError(error, 'PF_LOCK_TIMEOUT'), `PF_LOCK_TIMEOUT, not ${String(error)}`);
      assert.ok(waits.length >= 1, 'the wait is reported');
      assert.ok(waits[0]!.at - started < 3000, `the first report came after ${waits[0]!.at - started} ms`);
      const w = waits[0]!;
      assert.equal(w.step, 'add-column');
      assert.equal(w.lockMode, 'ACCESS EXCLUSIVE');
      assert.equal(w.queued, true);
      assert.equal(w.maxDurationMs, addColumn.maxDurationMs);
      const b = w.blockers.find((x) => x.pid === blocker.pid);
      assert.ok(b, `the blocker's pid ${blocker.pid} is named: ${JSON.stringify(w.blockers)}`);
      assert.equal(b.applicationName, 'pf-blocker');
      assert.equal(b.state, 'idle in transaction');
      assert.ok(b.xactStart instanceof Date && b.queryStart instanceof Date);
      assert.match(b.query ?? '', /pg_backend_pid|count/);
      assert.ok(
        new Set(waits.map((x) => x.attempt)).size >= 2,
        'each attempt reports its wait: ' + waits.map((x) => x.attempt).join(','),
      );
      for (const x of waits) assert.ok(x.waitedMs <= x.lockTimeoutMs + 200, `${x.waitedMs} ms in one attempt`);
      assert.ok(
        took <= addColumn.maxDurationMs + 1500,
        `gave up after ${took} ms; plan said ≤ ${addColumn.maxDurationMs}`,
      );
      const events = spans.spans().flatMap((s) => s.events.filter((e) => e.name === 'lock_wait'));
      assert.ok(events.length >= 1, 'a lock_wait span event');
      assert.match(
        String(events[0]!.attributes?.['phaseflag.lock_wait.blocker_pids']),
        new RegExp(`\\b${blocker.pid}\\b`),
      );
    } finally {
      await blocker.trx.rollback();
    }
  });

  it('the expand goes on once the blocker ends', async () => {
    await createAmountTable(suite.knex, 'orders_wait2', 100);
    const h = pf.migration(defineMigration(amountInput('wait2', 'orders_wait2', { ddl: { ...DDL, maxAttempts: 20 } })));
    const blocker = await holdTable('orders_wait2');
    const seen: number[] = [];
    const decision = await h.expand({
      onLockWait: (w) => {
        seen.push(...w.blockers.map((b) => b.pid));
        void blocker.trx.rollback().catch(() => undefined);
      },
    });
    assert.equal(decision.to, 'expanded');
    assert.ok(seen.includes(blocker.pid));
  });
});
