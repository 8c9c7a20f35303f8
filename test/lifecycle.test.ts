import assert from 'node:assert/strict';
import { StaticFlagSource } from '@phaseflag/core';
import type { Phaseflag } from '@phaseflag/postgres';
import { internalsOf } from '@phaseflag/postgres/internal';
import { captureSpans, createSuiteSchema, startLoad, waitFor, type Suite } from '@phaseflag/testkit';
import { columnExists, createOrders, engine, ordersAmount, plainOps, routerOps, wrongRows } from './support/orders.js';

const ROWS = 100_000;

describe('a full life cycle on 100k rows under continuous traffic', function () {
  this.timeout(600_000);
  const spans = captureSpans();
  let suite: Suite;
  let pf: Phaseflag;

  before(async () => {
    suite = await createSuiteSchema('lifecycle', { pool: { min: 0, max: 12 } });
    await createOrders(suite.knex, ROWS);
    pf = engine(suite);
    await pf.install();
    spans.reset();
  });

  after(async () => {
    await pf?.close();
    await suite?.cleanup();
  });

  it('walks every phase with zero failed application statements and ends with every row correct', async () => {
    const flags = new StaticFlagSource({ 'orders-amount.read-new': false });
    const m = pf.migration(ordersAmount());
    const router = await m.router(flags, { heartbeatMs: 200 });
    const appDb = suite.newKnex({ pool: { min: 0, max: 8 } });
    const routerLoad = startLoad({ knex: appDb, concurrency: 4, ops: routerOps(router, ROWS) });
    const plainLoad = startLoad({ knex: appDb, concurrency: 2, ops: plainOps(ROWS) });
    const running = [routerLoad, plainLoad];
    const phases: string[] = [];
    const step = async (name: string, fn: () => Promise<unknown>) => {
      await fn();
      const phase = (await m.status()).phase;
      phases.push(phase);
      // The router applies the phase (NOTIFY), then traffic runs in it, including the moments right after the change.
      await waitFor(() => router.core.currentPhase === phase, { description: `the router to apply ${phase}` });
      const before = running.map((load) => load.snapshot().ops);
      await waitFor(() => running.every((load, i) => load.snapshot().ops >= before[i]! + 20), {
        description: `traffic after ${name}`,
      });
      assert.equal(
        routerLoad.snapshot().errors + plainLoad.snapshot().errors,
        0,
        `errors after ${name}: ${JSON.stringify([...routerLoad.snapshot().errorSamples, ...plainLoad.snapshot().errorSamples].slice(0, 3))}`,
      );
    };

    await step('expand', () => m.expand());
    await step('dual-write', () => m.startDualWrite());
    await step('backfill', async () => {
      const result = await m.backfill();
      assert.equal(result.completed, true);
      assert.equal(result.phase, 'backfilled');
    });
    await step('verify', () => m.verify());
    assert.equal(router.column(), 'amount_cents', 'the flag is off: reads stay on the old column after verify');
    await step('read-new', () => m.readNew());
    assert.equal(
      router.column(),
      'amount_cents',
      'phase read-new alone does not switch reads: the flag decides per request',
    );
    flags.set('orders-amount.read-new', true);
    assert.equal(router.column(), 'amount');
    await step('read-old', () => m.readOld());
    // The lever works by itself: the flag is still on, every read is back on the old column (step waited for the router to apply it).
    assert.equal(router.column(), 'amount_cents', 'read-old sends reads back while the read-new flag stays on');
    await step('read-new again', () => m.readNew());
    assert.equal(router.column(), 'amount');

    // Writers that bypass phaseflag must be gone before the old column stops being written.
    const plain = await plainLoad.stop();
    running.splice(running.indexOf(plainLoad), 1);
    assert.equal(await wrongRows(suite.knex), 0, 'every row, old and new, right before contract');
    // Contract refuses while an instance reports reads of the old column: wait for the router's report since read-new.
    await waitFor(
      async () => (await internalsOf(pf).store.instances('orders-amount', 5000)).every((i) => !i.readsOld),
      { description: 'the router to report reads of the new column only' },
    );
    await step('contract', () => m.contract({ confirm: true, dropOldColumn: true }));
    assert.equal(await columnExists(suite.knex, suite.schema, 'amount_cents'), false);
    const app = await routerLoad.stop();
    await appDb.destroy();
    await router.close();

    assert.deepEqual(phases, [
      'expanded',
      'dual-write',
      'backfilled',
      'verified',
      'read-new',
      'verified',
      'read-new',
      'contracted',
    ]);
    assert.equal(
      app.errors + plain.errors,
      0,
      JSON.stringify([...app.errorSamples, ...plain.errorSamples].slice(0, 5)),
    );
    assert.ok(
      app.ops > 200 && plain.ops > 100,
      `traffic ran throughout (${app.ops} router ops, ${plain.ops} plain ops)`,
    );
    const nulls = await suite.knex.raw('SELECT count(*)::int AS n FROM orders WHERE amount IS NULL');
    assert.equal(nulls.rows[0].n, 0);
    const notNull = await suite.knex.raw(
      "SELECT attnotnull FROM pg_attribute WHERE attrelid = 'orders'::regclass AND attname = 'amount'",
    );
    assert.equal(notNull.rows[0].attnotnull, true, 'NOT NULL enforced at contract');

    const transitions = spans
      .byName('phaseflag.transition')
      .filter((s) => s.attributes['phaseflag.migration.id'] === 'orders-amount');
    const moves = transitions.map(
      (s) => `${String(s.attributes['phaseflag.phase.from'])}→${String(s.attributes['phaseflag.phase.to'])}`,
    );
    for (const move of [
      'pending→expanded',
      'expanded→dual-write',
      'dual-write→backfilling',
      'backfilling→backfilled',
      'backfilled→verified',
      'verified→read-new',
      'read-new→contracted',
    ]) {
      assert.ok(moves.includes(move), `a span for ${move} (saw ${moves.join(', ')})`);
    }
    assert.ok(spans.byName('phaseflag.backfill.batch').length > 10, 'each batch is a span');
    assert.ok(spans.byName('phaseflag.ddl').length >= 4, 'each DDL statement is a span');
    const events = (await m.status()).events.filter((e) => e.kind === 'transition').map((e) => e.toPhase);
    assert.ok(events.includes('contracted'));
  });
});
