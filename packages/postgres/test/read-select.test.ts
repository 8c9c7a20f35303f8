import assert from 'node:assert/strict';
import { StaticFlagSource, defineMigration, type Phase } from '@phaseflag/core';
import { amountInput, createSuiteSchema, waitFor, type Suite } from '@phaseflag/testkit';
import { Phaseflag, type KnexRouter } from '../src/index.js';

describe('router.select(): one representation per read, whatever the phase or the flag', function () {
  this.timeout(120_000);
  let suite: Suite;
  let pf: Phaseflag;
  const routers: KnexRouter[] = [];

  before(async () => {
    suite = await createSuiteSchema('read_select');
    pf = new Phaseflag({ knex: suite.knex, stateSchema: suite.stateSchema, pollIntervalMs: 50, graceMs: 50 });
    await pf.install();
  });
  after(async () => {
    for (const r of routers) await r.close();
    await pf?.close();
    await suite?.cleanup();
  });

  const createTable = async (table: string) => {
    await suite.knex.raw('CREATE TABLE ?? (id bigserial PRIMARY KEY, amount_cents integer NOT NULL)', [table]);
    await suite.knex.raw('INSERT INTO ?? (amount_cents) SELECT g * 333 FROM generate_series(1, 3000) AS g', [table]);
  };
  const at = (router: KnexRouter, phase: Phase) =>
    waitFor(() => router.core.currentPhase === phase, { timeoutMs: 5000, description: `the router to apply ${phase}` });

  it('returns the amount in units under "amount" in every phase from pending to contracted, read-new flag on and off', async () => {
    await createTable('orders_sel');
    const flags = new StaticFlagSource({ 'sel.read-new': true });
    const h = pf.migration(defineMigration(amountInput('sel', 'orders_sel')));
    const router = await h.router(flags, { heartbeatMs: 0 });
    routers.push(router);
    const read = async () => {
      const rows = await suite
        .knex('orders_sel')
        .select('id', router.select({ userId: 'u1' }))
        .whereIn('id', [3, 2000])
        .orderBy('id');
      return rows.map((r) => ({ ...r, id: Number(r.id) }));
    };
    const expected = [
      { id: 3, amount: '9.99' },
      { id: 2000, amount: '6660.00' },
    ];
    const seen: Array<[string, string, unknown]> = [];
    const check = async (label: string) => seen.push([label, router.decide({ userId: 'u1' }).read, await read()]);

    await check('pending');
    await h.expand();
    await at(router, 'expanded');
    await check('expanded');
    await h.startDualWrite();
    await at(router, 'dual-write');
    await check('dual-write');
    await h.backfill();
    await at(router, 'backfilled');
    await check('backfilled');
    await h.verify();
    await at(router, 'verified');
    await check('verified');
    await h.readNew();
    await at(router, 'read-new');
    await check('read-new, flag on');
    flags.set('sel.read-new', false);
    await check('read-new, flag off');
    flags.set('sel.read-new', true);
    router.core.takeReadCounts(); // the reads above were old ones: report this instance as reading new now
    await router.heartbeat();
    await h.contract({ confirm: true, dropOldColumn: true });
    await at(router, 'contracted');
    await check('contracted, old column dropped');

    for (const [label, , rows] of seen) assert.deepEqual(rows, expected, label);
    // …while the physical column did switch underneath.
    assert.deepEqual(
      seen.map(([label, side]) => `${label}: ${side}`),
      [
        'pending: old',
        'expanded: old',
        'dual-write: old',
        'backfilled: old',
        'verified: old',
        'read-new, flag on: new',
        'read-new, flag off: old',
        'contracted, old column dropped: new',
      ],
    );
  });

  it('gives the old meaning on request, under the old name, before and after the switch (reverse expression)', async () => {
    await createTable('orders_old');
    const flags = new StaticFlagSource({ 'old.read-new': true });
    const h = pf.migration(defineMigration(amountInput('old', 'orders_old')));
    const router = await h.router(flags, { heartbeatMs: 0 });
    routers.push(router);
    const read = async () =>
      suite
        .knex('orders_old')
        .first(router.select(undefined, { meaning: 'old' }), router.select(undefined, { as: 'units' }))
        .where('id', 3);
    await h.expand();
    await h.startDualWrite();
    await h.backfill();
    await h.verify();
    await at(router, 'verified');
    assert.deepEqual(await read(), { amount_cents: 999, units: '9.99' });
    await h.readNew();
    await at(router, 'read-new');
    await suite
      .knex('orders_old')
      .update(router.row({ amount: '12.34' }))
      .where('id', 3);
    assert.deepEqual(await read(), { amount_cents: 1234, units: '12.34' });
    router.core.takeReadCounts();
    await router.heartbeat();
    await h.contract({ confirm: true });
    await at(router, 'contracted');
    // contract stopped writing the old column: the old meaning now comes from the new column.
    await suite
      .knex('orders_old')
      .update(router.row({ amount: '0.50' }))
      .where('id', 3);
    assert.deepEqual(await read(), { amount_cents: 50, units: '0.50' });
  });

  it('refuses the old meaning with a typed error when there is no reverse expression, in any phase', async () => {
    await createTable('orders_norev');
    const h = pf.migration(defineMigration(amountInput('norev', 'orders_norev', { reverse: undefined })));
    const router = await h.router(new StaticFlagSource({}), { heartbeatMs: 0 });
    routers.push(router);
    assert.throws(
      () => router.select(undefined, { meaning: 'old' }),
      (e: { code?: string; hint?: string }) => e.code === 'PF_INVALID_OPTIONS' && /reverse/.test(e.hint ?? ''),
    );
    assert.throws(
      () => router.select(undefined, 'amount_cents' as never),
      (e: { code?: string }) => e.code === 'PF_INVALID_OPTIONS',
    );
    assert.throws(
      () => router.select(undefined, { meaning: 'units' as never }),
      (e: { code?: string }) => e.code === 'PF_INVALID_OPTIONS',
    );
  });

  it('qualifies the columns with a table alias, so a join with a same-named column reads the right one', async () => {
    await createTable('orders_join');
    await suite.knex.raw(
      'CREATE TABLE refunds_join (order_id bigint PRIMARY KEY, amount_cents integer NOT NULL, amount numeric(12,2))',
    );
    await suite.knex.raw('INSERT INTO refunds_join SELECT g, 1, 0.01 FROM generate_series(1, 10) AS g');
    const flags = new StaticFlagSource({ 'join.read-new': true });
    const h = pf.migration(defineMigration(amountInput('join', 'orders_join')));
    const router = await h.router(flags, { heartbeatMs: 0 });
    routers.push(router);
    const read = async () =>
      suite
        .knex({ o: 'orders_join' })
        .join({ r: 'refunds_join' }, 'r.order_id', 'o.id')
        .first(router.select(undefined, { table: 'o' }), router.select(undefined, { table: 'o', meaning: 'old' }), {
          refund: 'r.amount_cents',
        })
        .where('o.id', 3);
    assert.deepEqual(await read(), { amount: '9.99', amount_cents: 999, refund: 1 });
    await h.expand();
    await h.startDualWrite();
    await h.backfill();
    await h.verify();
    await h.readNew();
    await at(router, 'read-new');
    assert.deepEqual(await read(), { amount: '9.99', amount_cents: 999, refund: 1 });
  });

  it('reads a brand-new column (no old column) as its default until it is written, then the column itself', async () => {
    await suite.knex.raw('CREATE TABLE orders_brand (id bigserial PRIMARY KEY)');
    await suite.knex.raw('INSERT INTO orders_brand SELECT FROM generate_series(1, 10)');
    const h = pf.migration({
      id: 'brand',
      table: 'orders_brand',
      oldColumn: null,
      newColumn: { name: 'channel', type: 'text', default: 'web' },
    });
    const router = await h.router(new StaticFlagSource({}), { heartbeatMs: 0 });
    routers.push(router);
    assert.deepEqual(await suite.knex('orders_brand').first(router.select()).where('id', 1), { channel: 'web' });
    await h.expand();
    await h.startDualWrite();
    await at(router, 'dual-write');
    await suite
      .knex('orders_brand')
      .update(router.row({ channel: 'app' }))
      .where('id', 1);
    assert.deepEqual(await suite.knex('orders_brand').select(router.select()).whereIn('id', [1, 2]).orderBy('id'), [
      { channel: 'app' },
      { channel: 'web' },
    ]);
  });
});
