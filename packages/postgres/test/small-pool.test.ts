import assert from 'node:assert/strict';
import { defineMigration } from '@phaseflag/core';
import { amountInput, createAmountTable, createSuiteSchema, wrongAmountRows, type Suite } from '@phaseflag/testkit';
import { Phaseflag } from '../src/index.js';

const ACQUIRE_TIMEOUT_MS = 15_000;

describe('small pools: the whole life cycle with the smallest pool a user may set', function () {
  this.timeout(120_000);
  let suite: Suite;

  before(async () => {
    suite = await createSuiteSchema('small_pool');
  });
  after(async () => {
    await suite?.cleanup();
  });

  for (const max of [1, 2]) {
    it(`pool max ${max}: expand → contract finishes well under the acquire timeout`, async () => {
      const table = `orders_pool${max}`;
      await createAmountTable(suite.knex, table, 5_000);
      const knex = suite.newKnex({ pool: { min: 0, max } });
      (knex.client as { config: { acquireConnectionTimeout?: number } }).config.acquireConnectionTimeout =
        ACQUIRE_TIMEOUT_MS;
      const pf = new Phaseflag({ knex, stateSchema: suite.stateSchema, pollIntervalMs: 100, graceMs: 0 });
      try {
        await pf.install();
        const started = Date.now();
        const h = pf.migration(
          defineMigration(
            amountInput(`pool${max}`, table, {
              batch: { size: 1000, workers: 4 },
              throttle: { query: 'SELECT false', checkIntervalMs: 10 },
            }),
          ),
        );
        await h.expand();
        await h.startDualWrite();
        const run = await h.backfill();
        assert.equal(run.completed, true);
        await h.verify();
        await h.readNew();
        await h.contract({ confirm: true });
        const took = Date.now() - started;
        assert.equal((await h.status()).phase, 'contracted');
        assert.ok(took < ACQUIRE_TIMEOUT_MS / 2, `the life cycle took ${took} ms`);
        assert.equal(await wrongAmountRows(suite.knex, table), 0);
      } finally {
        await pf.close();
      }
    });
  }
});
