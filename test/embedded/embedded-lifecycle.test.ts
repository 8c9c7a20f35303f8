import assert from 'node:assert/strict';
import { StaticFlagSource } from '@phaseflag/core';
import { createSuiteSchema, waitFor, type Suite } from '@phaseflag/testkit';
import { createOrders, engine, ordersAmount, wrongRows } from '../support/orders.js';

/**
 * Run by `npm test` with PHASEFLAG_EMBEDDED=1, so the embedded fallback (a newcomer's machine with only Node)
 * cannot rot while every other suite uses the local server.
 */
describe('on the embedded Postgres', function () {
  this.timeout(300_000);
  let suite: Suite;

  before(async () => {
    suite = await createSuiteSchema('embedded');
  });

  after(async () => {
    await suite?.cleanup();
  });

  it('runs a whole migration', async () => {
    assert.equal(suite.kind, 'embedded', 'PHASEFLAG_EMBEDDED=1 forces the embedded server');
    const version = (await suite.knex.raw('SHOW server_version_num')).rows[0].server_version_num as string;
    assert.ok(Number(version) >= 170000, `embedded PostgreSQL 17 (got ${version})`);
    await createOrders(suite.knex, 10_000);
    const pf = engine(suite);
    await pf.install();
    const m = pf.migration(ordersAmount());
    const router = await m.router(new StaticFlagSource({ 'orders-amount.read-new': true }), { heartbeatMs: 0 });
    try {
      await m.expand();
      await m.startDualWrite();
      await suite.knex('orders').insert(router.row({ customer_id: 1, amount_cents: 12345 }));
      await m.backfill();
      await m.verify();
      assert.equal(router.column(), 'amount_cents', 'verified reads old, whatever the read-new flag says');
      await m.readNew();
      // The router hears the phase through LISTEN/NOTIFY (a polling backstop behind it).
      await waitFor(() => router.column() === 'amount', {
        timeoutMs: 5000,
        description: 'the router applying read-new',
      });
      // Contract waits until no live instance reads old. With heartbeats off, report by hand: the first report
      // carries the old reads made while waiting, the next one says what the router does now (new only).
      await router.heartbeat();
      await router.heartbeat();
      assert.equal(await wrongRows(suite.knex), 0);
      await m.contract({ confirm: true, dropOldColumn: true });
      assert.equal((await m.status()).phase, 'contracted');
    } finally {
      await router.close();
      await pf.close();
    }
  });
});
