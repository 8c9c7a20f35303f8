import assert from 'node:assert/strict';
import { defineMigration } from '@phaseflag/core';
import { createSuiteSchema, type Suite } from '@phaseflag/testkit';
import { prepareBackfill } from '../src/operations/backfill/index.js';
import { Phaseflag } from '../src/phaseflag.js';
import { internalsOf } from '../src/internal.js';

/**
 * Backfill ranges end at the highest key when every writer dual-writes. Ranges prepared in one dual-write must not
 * be reused in the next: rows inserted between the two, while nobody wrote the new column, lie above them.
 */
describe('backfill ranges belong to one dual-write', function () {
  this.timeout(60_000);
  let suite: Suite;
  let pf: Phaseflag;

  before(async () => {
    suite = await createSuiteSchema('stale_ranges');
    await suite.knex.raw(`CREATE TABLE orders (id bigserial PRIMARY KEY, amount_cents integer NOT NULL);
      INSERT INTO orders (amount_cents) SELECT g * 7 FROM generate_series(1, 2000) g`);
    pf = new Phaseflag({ knex: suite.knex, stateSchema: suite.stateSchema, pollIntervalMs: 100, graceMs: 100 });
    await pf.install();
  });
  after(async () => {
    await pf?.close();
    await suite?.cleanup();
  });

  it('plans the ranges again after a crash between preparing them and backfilling, stop-dual-write and new rows', async () => {
    const m = pf.migration(
      defineMigration({
        id: 'stale',
        table: 'orders',
        oldColumn: 'amount_cents',
        newColumn: { name: 'amount', type: 'numeric(12,2)' },
        backfill: 'amount_cents::numeric / 100',
        reverse: null,
      }),
    );
    await m.expand();
    await m.startDualWrite();
    // What `backfill` does first, committed on its own; then the process dies before dual-write → backfilling.
    const prepared = await prepareBackfill(internalsOf(pf).ctx, await m.resolve(), { workers: 1 });
    assert.deepEqual(prepared.upperKey, [2000]);
    await m.stopDualWrite();
    await suite.knex.raw('INSERT INTO orders (amount_cents) SELECT g FROM generate_series(1, 500) g');
    await m.startDualWrite();

    const run = await m.backfill();
    assert.equal(run.completed, true);
    assert.equal(run.rowsScanned, 2500, 'the rows inserted between the two dual-writes are backfilled too');
    const nulls = (await suite.knex.raw('SELECT count(*)::int AS n FROM orders WHERE amount IS NULL')).rows[0].n;
    assert.equal(nulls, 0);
    const verify = await m.verify();
    assert.equal(verify.clean, true, JSON.stringify(verify));
    assert.equal((await m.status()).phase, 'verified');
  });
});
