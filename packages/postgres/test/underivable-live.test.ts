import assert from 'node:assert/strict';
import { ATTR, METRIC, StaticFlagSource, isPhaseflagError } from '@phaseflag/core';
import { captureMetrics, startLoad, type LoadOp } from '@phaseflag/testkit';
import type { Knex } from 'knex';
import type { Phaseflag } from '../src/index.js';
import { internalsOf } from '../src/internal.js';
import { qtyMigration, setupUnderivableSuite, type UnderivableSuite } from './fixtures/underivable-suite.js';

/**
 * The application's writes while rows cannot be derived: its own plain SQL on a pool of its own, and the router
 * with knex, under concurrent load. None may fail; the rows are recorded and block verified until fixed.
 */
describe('rows the expression cannot derive', function () {
  this.timeout(120_000);
  const metrics = captureMetrics();
  let s: UnderivableSuite | undefined;
  let pf: Phaseflag;
  let app: Knex;
  let stockTable: UnderivableSuite['stockTable'];
  let keys: UnderivableSuite['keys'];

  before(async () => {
    s = await setupUnderivableSuite('underivable live');
    ({ pf, app, stockTable, keys } = s);
  });
  after(async () => {
    await s?.close();
  });

  it('never fails an application write (plain SQL and the router, under load); the rows are recorded and block verified until fixed', async () => {
    await stockTable('stock_live', 5000, { 777: 'N/A' });
    const flags = new StaticFlagSource({
      'live.dual-write': true,
      'live.backfill': true,
      'live.read-new': false,
      'live.contract': false,
    });
    const m = pf.migration(qtyMigration('live', 'stock_live'));
    await m.expand();
    await m.startDualWrite({ acceptPreflightFailures: true });
    const router = await m.router(flags, { heartbeatMs: 0 });
    const rand = (n: number) => 1 + Math.floor(Math.random() * n);
    const ops: LoadOp[] = [
      {
        name: 'sql-update',
        weight: 2,
        run: async (_i, db) => {
          await db.raw('UPDATE stock_live SET qty = ? WHERE id = ?', [String(rand(900)), 1000 + rand(4000)]);
        },
      },
      {
        name: 'sql-touch-planted',
        weight: 1,
        run: async (_i, db) => {
          await db.raw("UPDATE stock_live SET note = 'n' || ? WHERE id = 777", [rand(9)]);
        },
      },
      {
        name: 'router-update',
        weight: 2,
        run: async (_i, db) => {
          await db('stock_live')
            .update(router.row({ qty: String(rand(900)) }))
            .where('id', 1000 + rand(4000));
        },
      },
      {
        name: 'router-insert',
        weight: 1,
        run: async (_i, db) => {
          await db('stock_live').insert(router.row({ qty: String(rand(900)) }));
        },
      },
    ];
    const load = startLoad({ knex: app, concurrency: 4, ops });
    try {
      await app.raw("UPDATE stock_live SET qty = 'lots' WHERE id = 5");
      await app.raw("INSERT INTO stock_live (id, qty) VALUES (100001, 'x')");
      await app.raw("UPDATE stock_live SET note = 'unrelated' WHERE id = 777");
      await app.raw('UPDATE stock_live SET qty = qty WHERE id = 777');
      await app('stock_live')
        .update(router.row({ qty: 'lots' }))
        .where('id', 6);
      await app('stock_live').insert(router.row({ id: 100002, qty: 'y' }));
      const backfilled = await m.backfill();
      assert.equal(backfilled.phase, 'backfilled');
    } finally {
      const report = await load.stop();
      assert.equal(report.errors, 0, JSON.stringify(report.errorSamples));
      assert.ok(report.ops > 20);
      await router.close();
    }
    assert.deepEqual(
      (await app.raw('SELECT id, qty, qty_int FROM stock_live WHERE id IN (6, 100001, 100002, 777) ORDER BY id')).rows,
      [
        { id: '6', qty: 'lots', qty_int: null },
        { id: '777', qty: 'N/A', qty_int: null },
        { id: '100001', qty: 'x', qty_int: null },
        { id: '100002', qty: 'y', qty_int: null },
      ],
    );
    // The load writes the qty of rows 1001-5000 only, so the planted rows (5, 6, 777, 100001, 100002) keep what this test wrote.
    const status = await m.status();
    assert.ok(status.underivable.count >= 4);
    assert.deepEqual(
      status.underivable.rows.find((u) => u.key[0] === 777),
      {
        ...status.underivable.rows.find((u) => u.key[0] === 777),
        oldValue: 'N/A',
        error: 'invalid input syntax for type integer: "N/A"',
        sqlstate: '22P02',
        source: 'preflight',
      },
    );
    await assert.rejects(
      m.verify(),
      (e: unknown) =>
        isPhaseflagError(e, 'PF_VERIFY_FAILED') && /cannot be derived by the backfill expression/.test(e.message),
    );
    // The gauge holds the count status last read.
    const collected = await metrics.collect();
    const gauge = collected.scopeMetrics
      .flatMap((sm) => sm.metrics)
      .find((x) => x.descriptor.name === METRIC.underivableRows);
    const point = gauge?.dataPoints.find((p) => p.attributes[ATTR.migrationId] === 'live');
    assert.equal(point?.value, status.underivable.count);
    const refused = await m.inspect();
    assert.equal(refused.facts.underivable?.count, status.underivable.count);

    // Fixed by the application (a value that maps): the trigger derives the new column, verify clears the records.
    await app.raw("UPDATE stock_live SET qty = '1' WHERE qty !~ '^[0-9]+$'");
    const clean = await m.verify();
    assert.equal(clean.clean, true);
    assert.equal(clean.underivable.count, 0);
    assert.equal((await internalsOf(pf).store.get('live'))!.phase, 'verified');
    assert.deepEqual(await keys('live'), []);
  });
});
