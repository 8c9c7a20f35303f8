import assert from 'node:assert/strict';
import { StaticFlagSource, isPhaseflagError, type Phase } from '@phaseflag/core';
import type { MigrationHandle, Phaseflag } from '@phaseflag/postgres';
import { captureSpans, createSuiteSchema, startLoad, waitFor, type Suite } from '@phaseflag/testkit';
import { columnExists, createOrders, engine, ordersAmount, plainOps, routerOps, wrongRows } from './support/orders.js';

const ROWS = 5000;

/** Moves a migration forward until it reaches `target`. */
async function advanceTo(m: MigrationHandle, target: Phase): Promise<void> {
  const order: Array<[Phase, () => Promise<unknown>]> = [
    ['expanded', () => m.expand()],
    ['dual-write', () => m.startDualWrite()],
    ['backfilled', () => m.backfill()],
    ['verified', () => m.verify()],
    ['read-new', () => m.readNew()],
  ];
  if (target === 'paused') {
    await m.expand();
    await m.startDualWrite();
    const ctrl = new AbortController();
    let batches = 0;
    const run = m.backfill({
      batch: { size: 100, targetBatchMs: 0, pauseMs: 20 },
      signal: ctrl.signal,
      onProgress: () => batches++,
    });
    // Paused mid-way: once a few of its 50 batches have committed.
    await waitFor(() => batches >= 3, { description: 'the backfill under way' });
    await m.pause();
    const result = await run;
    assert.equal(result.stoppedBy, 'phase-changed');
    return;
  }
  for (const [phase, go] of order) {
    await go();
    if (phase === target) return;
  }
}

describe('each phase can be rolled back under traffic and started again', function () {
  this.timeout(300_000);
  const spans = captureSpans();
  let suite: Suite;
  let pf: Phaseflag;

  before(async () => {
    suite = await createSuiteSchema('rollback', { pool: { min: 0, max: 12 } });
    await createOrders(suite.knex, ROWS);
    pf = engine(suite);
    await pf.install();
  });

  after(async () => {
    await pf?.close();
    await suite?.cleanup();
  });

  for (const phase of ['expanded', 'dual-write', 'paused', 'backfilled', 'verified', 'read-new'] as Phase[]) {
    it(`start → rollback from ${phase} → start again → complete, with no failed statement`, async () => {
      const id = `orders-amount-${phase}`;
      const flags = new StaticFlagSource({ [`${id}.read-new`]: true });
      const m = pf.migration(ordersAmount({ id }));
      const router = await m.router(flags, { heartbeatMs: 0 });
      const appDb = suite.newKnex({ pool: { min: 0, max: 6 } });
      const load = startLoad({ knex: appDb, concurrency: 3, ops: [...routerOps(router, ROWS), ...plainOps(ROWS)] });
      try {
        await advanceTo(m, phase);
        assert.equal((await m.status()).phase, phase);
        spans.reset();
        await m.rollback();
        assert.equal((await m.status()).phase, 'rolled-back');
        assert.equal(router.column(), 'amount_cents', 'reads are back on the old column');
        assert.equal(
          await columnExists(suite.knex, suite.schema, 'amount'),
          false,
          'the column this migration created is gone',
        );
        const trig = await suite.knex.raw(
          "SELECT count(*)::int AS n FROM pg_trigger WHERE tgrelid = 'orders'::regclass AND NOT tgisinternal",
        );
        assert.equal(trig.rows[0].n, 0, 'the sync trigger is gone');
        const rolled = spans
          .byName('phaseflag.transition')
          .find((s) => s.attributes['phaseflag.action'] === 'rollback');
        assert.equal(rolled?.attributes['phaseflag.phase.from'], phase);

        // Start again and finish.
        await m.expand();
        await m.startDualWrite();
        await m.backfill();
        await m.verify();
        await m.readNew();
        const stopped = await load.stop();
        // Heartbeats are off here (heartbeatMs 0) but for the one sent at each phase change, which counted the
        // reads of `verified` (old ones, by the read rule): report what the router read since read-new.
        await router.heartbeat();
        assert.equal(stopped.errors, 0, JSON.stringify(stopped.errorSamples.slice(0, 3)));
        assert.equal(await wrongRows(suite.knex), 0);
        await m.contract({ confirm: true });
        assert.equal((await m.status()).phase, 'contracted');
        await assert.rejects(m.rollback(), (e: unknown) => isPhaseflagError(e, 'PF_IRREVERSIBLE'));
        // Leave the table as it was for the next case: the contracted column stays, so drop it by hand.
        await suite.knex.raw('ALTER TABLE orders DROP COLUMN amount');
        await suite.knex.raw('ALTER TABLE orders ALTER COLUMN amount_cents SET NOT NULL');
      } finally {
        await load.stop();
        await router.close();
        await appDb.destroy();
      }
    });
  }
});
