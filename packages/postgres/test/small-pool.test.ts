import assert from 'node:assert/strict';
import { StaticFlagSource, defineMigration } from '@phaseflag/core';
import {
  amountInput,
  createAmountTable,
  createSuiteSchema,
  waitFor,
  wrongAmountRows,
  type Suite,
} from '@phaseflag/testkit';
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

  it('pool max 1 with a controller (leader lock, LISTEN) and a router: the flags walk it to contracted', async () => {
    const table = 'orders_pool_ctl';
    await createAmountTable(suite.knex, table, 3_000);
    const knex = suite.newKnex({ pool: { min: 0, max: 1 } });
    const pf = new Phaseflag({ knex, stateSchema: suite.stateSchema, pollIntervalMs: 100, graceMs: 0 });
    try {
      await pf.install();
      const m = defineMigration(amountInput('poolctl', table));
      const flags = new StaticFlagSource({
        'poolctl.dual-write': true,
        'poolctl.backfill': true,
        'poolctl.read-new': true,
        'poolctl.contract': true,
      });
      const router = await pf.migration(m).router(flags, { heartbeatMs: 200, instanceId: 'app-1' });
      const c = pf.controller(m, { flags, intervalMs: 200 });
      const started = Date.now();
      await c.start();
      await waitFor(async () => (await pf.migration(m).status()).phase === 'contracted', {
        timeoutMs: ACQUIRE_TIMEOUT_MS,
        description: 'contracted',
      });
      assert.ok(Date.now() - started < ACQUIRE_TIMEOUT_MS / 2, `took ${Date.now() - started} ms`);
      await c.stop();
      await router.close();
      assert.equal(await wrongAmountRows(suite.knex, table), 0);
    } finally {
      await pf.close();
    }
  });
});
