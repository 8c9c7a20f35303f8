import assert from 'node:assert/strict';
import { defineMigration, StaticFlagSource, type MigrationInput } from '@phaseflag/core';
import { createSuiteSchema, type Suite } from '@phaseflag/testkit';
import type { Knex } from 'knex';
import { Phaseflag } from '../src/phaseflag.js';

/**
 * An expression is one parenthesised SQL expression wherever it runs: the plan's probes, expand's check, the sync
 * trigger, the backfill's UPDATE, verify and the router's derived writes. A trailing `-- comment` must not swallow
 * what follows it, and the jsonb operators `?`, `?|`, `?&` must not be taken for knex placeholders.
 */
describe('expressions: one parenthesised SQL expression everywhere', function () {
  this.timeout(60_000);
  let suite: Suite;
  let pf: Phaseflag;
  let app: Knex;

  before(async () => {
    suite = await createSuiteSchema('expressions');
    await suite.knex.raw(`
      CREATE TABLE orders (id bigint PRIMARY KEY, amount_cents integer NOT NULL);
      INSERT INTO orders SELECT g, g * 37 FROM generate_series(1, 3000) g;
      CREATE TABLE events (id bigint PRIMARY KEY, payload jsonb NOT NULL);
      INSERT INTO events SELECT g, CASE WHEN g % 3 = 0 THEN '{"k": 1}' WHEN g % 3 = 1 THEN '{"x": 1, "y": 2}' ELSE '{"z": 0}' END::jsonb
        FROM generate_series(1, 3000) g;
    `);
    pf = new Phaseflag({ knex: suite.knex, stateSchema: suite.stateSchema, pollIntervalMs: 100, graceMs: 200 });
    await pf.install();
    app = suite.newKnex({ pool: { min: 0, max: 2 } });
  });
  after(async () => {
    await app?.destroy();
    await pf?.close();
    await suite?.cleanup();
  });

  async function walk(
    input: MigrationInput,
    flag: string,
  ): Promise<{ router: Awaited<ReturnType<ReturnType<Phaseflag['migration']>['router']>> }> {
    const m = pf.migration(defineMigration({ ...input, batch: { size: 500 } }));
    await m.plan();
    await m.expand();
    await m.startDualWrite();
    const router = await m.router(new StaticFlagSource({ [flag]: false }), { heartbeatMs: 0 });
    const backfill = await m.backfill();
    assert.equal(backfill.completed, true);
    const verify = await m.verify();
    assert.equal(verify.clean, true, `verify: ${JSON.stringify(verify)}`);
    return { router };
  }

  it('takes a trailing -- comment in the backfill, reverse and check through plan, dual-write, backfill, verify and router writes', async () => {
    const { router } = await walk(
      {
        id: 'cents-commented',
        table: 'orders',
        oldColumn: 'amount_cents',
        newColumn: { name: 'amount', type: 'numeric(12,2)', check: 'amount >= 0 -- never negative' },
        backfill: 'amount_cents::numeric / 100 -- to units',
        reverse: '(amount * 100)::integer -- back to cents',
      },
      'cents-commented.read-new',
    );
    try {
      await app('orders').insert(router.row({ id: 5001, amount_cents: 1234 }));
      await app('orders')
        .update(router.row({ amount_cents: 999 }))
        .where('id', 7);
      await app.raw('INSERT INTO orders (id, amount_cents) VALUES (5002, 250)');
      await app.raw('UPDATE orders SET amount_cents = 1 WHERE id = 8');
      const rows = (
        await app.raw('SELECT id, amount_cents, amount::text FROM orders WHERE id IN (7, 8, 5001, 5002) ORDER BY id')
      ).rows;
      assert.deepEqual(rows, [
        { id: '7', amount_cents: 999, amount: '9.99' },
        { id: '8', amount_cents: 1, amount: '0.01' },
        { id: '5001', amount_cents: 1234, amount: '12.34' },
        { id: '5002', amount_cents: 250, amount: '2.50' },
      ]);
    } finally {
      await router.close();
    }
  });

  it('takes the jsonb operators ?, ?| and ?& through plan, dual-write, backfill, verify and router writes', async () => {
    const { router } = await walk(
      {
        id: 'has-key',
        table: 'events',
        oldColumn: 'payload',
        newColumn: { name: 'has_key', type: 'boolean', check: "has_key OR NOT (payload ? 'k')" },
        backfill: "payload ? 'k' OR payload ?& array['x', 'y'] OR NOT (payload ?| array['z', 'w'])",
        reverse: null,
      },
      'has-key.read-new',
    );
    try {
      const counts = (
        await app.raw(
          'SELECT count(*) FILTER (WHERE has_key)::int AS yes, count(*) FILTER (WHERE NOT has_key)::int AS no FROM events',
        )
      ).rows[0];
      assert.deepEqual(counts, { yes: 2000, no: 1000 });
      await app('events').insert(router.row({ id: 5001, payload: JSON.stringify({ k: true }) }));
      await app('events').insert(router.row({ id: 5002, payload: JSON.stringify({ z: true }) }));
      await app('events')
        .update(router.row({ payload: JSON.stringify({ x: 1, y: 1 }) }))
        .where('id', 2);
      await app.raw(`INSERT INTO events (id, payload) VALUES (5003, '{"k": 2}')`);
      const rows = (await app.raw('SELECT id, has_key FROM events WHERE id IN (2, 5001, 5002, 5003) ORDER BY id')).rows;
      assert.deepEqual(rows, [
        { id: '2', has_key: true },
        { id: '5001', has_key: true },
        { id: '5002', has_key: false },
        { id: '5003', has_key: true },
      ]);
    } finally {
      await router.close();
    }
  });
});
