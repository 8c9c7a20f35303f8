import assert from 'node:assert/strict';
import { StaticFlagSource, defineMigration } from '@phaseflag/core';
import { amountInput, createSuiteSchema, waitFor, type Suite } from '@phaseflag/testkit';
import { Phaseflag, type KnexRouter } from '../src/index.js';

/** Shadow reads' SQL beside the value in the shapes applications read with: joins, raw SQL, first(), transactions. */
describe('router.select() with shadow reads: the comparison rides beside the value and never reaches the caller', function () {
  this.timeout(120_000);
  let suite: Suite;
  let pf: Phaseflag;
  let router: KnexRouter;
  const flags = new StaticFlagSource({ 'shd.shadow': true });

  before(async () => {
    suite = await createSuiteSchema('shadow_select');
    pf = new Phaseflag({ knex: suite.knex, stateSchema: suite.stateSchema, pollIntervalMs: 50, graceMs: 0 });
    await pf.install();
    await suite.knex.raw('CREATE TABLE orders_shd (id bigserial PRIMARY KEY, amount_cents integer NOT NULL)');
    await suite.knex.raw('INSERT INTO orders_shd (amount_cents) SELECT g * 333 FROM generate_series(1, 500) AS g');
    await suite.knex.raw('CREATE TABLE lines_shd (id bigserial PRIMARY KEY, order_id bigint, amount_cents integer)');
    await suite.knex.raw('INSERT INTO lines_shd (order_id, amount_cents) SELECT g, 1 FROM generate_series(1, 500) g');
    const h = pf.migration(defineMigration(amountInput('shd', 'orders_shd', { shadow: { minCompared: 10 } })));
    await h.expand();
    await h.startDualWrite();
    await h.backfill();
    await h.verify();
    router = await h.router(flags, { instanceId: 'shd-1', heartbeatMs: 0 });
    await waitFor(() => router.core.currentPhase === 'verified', { timeoutMs: 5000, description: 'verified' });
    await suite.knex.transaction(async (trx) => {
      await trx.raw('SET LOCAL session_replication_role = replica');
      await trx.raw('UPDATE orders_shd SET amount = amount + 1 WHERE id IN (5, 6)');
    });
  });
  after(async () => {
    await router?.close();
    await pf?.close();
    await suite?.cleanup();
  });

  const counts = async () => {
    await router.heartbeat();
    const s = (await pf.migration(router.core.migration).status()).shadow!;
    return [s.compared, s.mismatched];
  };

  it('compares in a join (qualified columns, the same name in both tables), through first(), raw SQL and a transaction', async () => {
    const joined = await suite
      .knex('orders_shd as o')
      .join('lines_shd as l', 'l.order_id', 'o.id')
      .select('o.id', 'l.amount_cents', router.select({}, { table: 'o' }))
      .where('o.id', '<=', 10)
      .orderBy('o.id');
    assert.equal(joined.length, 10);
    assert.deepEqual(Object.keys(joined[0]), ['id', 'amount_cents', 'amount']);
    assert.deepEqual(await counts(), [10, 2]);

    const one = await suite.knex('orders_shd').select('id', router.select()).where({ id: 5 }).first();
    assert.deepEqual(Object.keys(one), ['id', 'amount']);
    const raw = await suite.knex.raw('SELECT id, ? FROM orders_shd WHERE id <= 3', [router.select()]);
    assert.deepEqual(Object.keys(raw.rows[0]), ['id', 'amount']);
    await suite.knex.transaction(async (trx) => {
      const rows = await trx('orders_shd').select('id', router.select()).where('id', '<=', 4);
      assert.deepEqual(Object.keys(rows[0]), ['id', 'amount']);
    });
    assert.deepEqual(await counts(), [10 + 1 + 3 + 4, 3]);
    const s = (await pf.migration(router.core.migration).status()).shadow!;
    assert.deepEqual(
      s.mismatches.map((m) => [m.key, m.old, m.new]),
      [
        [[5], '1665', '17.65'],
        [[6], '1998', '20.98'],
        [[5], '1665', '17.65'],
      ],
    );
  });

  it('leaves the comparison out with { shadow: false }, and collectShadow() takes it off rows read elsewhere', async () => {
    const grouped = await suite
      .knex('orders_shd')
      .select(router.select({}, { shadow: false }))
      .count('* as n')
      .groupBy('amount_cents')
      .limit(1);
    assert.deepEqual(Object.keys(grouped[0]!).sort(), ['amount', 'n']);
    // A query the router's knex does not see: its rows are handed over.
    const sql = suite.knex('orders_shd').select('id', router.select()).where('id', '<=', 2).toQuery();
    const client = await (suite.knex.client as { acquireConnection(): Promise<unknown> }).acquireConnection();
    try {
      const result = await (client as { query(q: string): Promise<{ rows: Record<string, unknown>[] }> }).query(sql);
      assert.equal(Object.keys(result.rows[0]!).length, 3, 'the comparison is there before it is collected');
      const rows = router.collectShadow(result.rows);
      assert.deepEqual(Object.keys(rows[0]!), ['id', 'amount']);
    } finally {
      await (suite.knex.client as { releaseConnection(c: unknown): Promise<void> }).releaseConnection(client);
    }
    assert.deepEqual((await counts())[0], 18 + 2);
  });
});
