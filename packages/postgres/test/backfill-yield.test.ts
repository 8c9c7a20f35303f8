import assert from 'node:assert/strict';
import { ATTR, METRIC, SPAN } from '@phaseflag/core';
import { holdsFor, waitFor } from '@phaseflag/testkit';
import { runBackfill } from '../src/operations/backfill/index.js';
import {
  createUsers,
  rangeTotals,
  registerMigration,
  resolveFor,
  useBackfillSuite,
  usersMigration,
} from './fixtures/backfill-suite.js';

/**
 * throttle.yieldToApplication and throttle.maxLoad: the application watch samples the server while the backfill
 * runs, holds the workers back (and shrinks the batches) while the application waits on them or the server is
 * busy, and lets them go on once it is not.
 */
describe('backfill: yields to the application', function () {
  this.timeout(120_000);
  const s = useBackfillSuite('backfill_yield');

  it('shrinks the batches and holds back after an application write waited on a batch, then carries on', async () => {
    const { ctx } = s;
    await createUsers(ctx.knex, 'users_yield', 3000);
    // Each batch's UPDATE holds its rows 150 ms after changing them (the application's writes skip the sleep), so
    // a write to a row of the batch in flight waits on the worker's row lock.
    await ctx.knex.raw(`CREATE FUNCTION pf_slow_yield() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF current_setting('pf.app', true) = 'on' THEN RETURN NULL; END IF;
        PERFORM pg_sleep(0.15);
        RETURN NULL;
      END $$`);
    await ctx.knex.raw(
      'CREATE TRIGGER pf_slow_yield AFTER UPDATE ON users_yield FOR EACH STATEMENT EXECUTE FUNCTION pf_slow_yield()',
    );
    const r = await resolveFor(
      ctx.knex,
      usersMigration('users-yield', 'users_yield', { throttle: { yieldToApplication: true, yieldSampleMs: 10 } }),
    );
    await registerMigration(ctx, r);
    const running = runBackfill(ctx, r, { batch: { size: 400, minSize: 50, targetBatchMs: 0 } });

    // The application writes a row of the batch in flight (the one after the last checkpoint) until the watch
    // has seen one of its writes wait.
    const app = s.suite.newKnex();
    try {
      await waitFor(
        async () => {
          if (s.logs.some((l) => /backfill yielding to the application/.test(l.message))) return true;
          const { rowsDone, done } = await rangeTotals(ctx, 'users-yield');
          if (done > 0) throw new Error('the backfill ended before any application write waited on it');
          await app.transaction(async (trx) => {
            await trx.raw("SELECT set_config('pf.app', 'on', true)");
            await trx.raw('UPDATE users_yield SET email = email WHERE id = ?', [rowsDone + 10]);
          });
          return false;
        },
        { timeoutMs: 30_000, intervalMs: 5, description: 'an application write to wait on a batch' },
      );
    } finally {
      await app.destroy();
    }
    const result = await running;
    assert.equal(result.completed, true);
    assert.equal((await rangeTotals(ctx, 'users-yield')).rowsDone, 3000);

    const yielding = s.logs.find((l) => /backfill yielding to the application/.test(l.message))!;
    assert.match(
      yielding.message,
      /backend \d+ waited \d+ ms on rows of backfill backend \d+; batches now at most 200 rows/,
    );
    assert.equal(yielding.fields?.reason, 'lock_wait');
    // Halved from the 400 rows asked for: the batches after the wait are smaller, and one of them held back first.
    const batches = s.spans.byName(SPAN.backfillBatch);
    const sizes = batches.map((b) => Number(b.attributes[ATTR.batchSize]));
    assert.equal(sizes[0], 400);
    assert.ok(
      sizes.some((n) => n <= 200),
      `batch sizes ${sizes.join(',')}`,
    );
    assert.ok(batches.some((b) => b.attributes[ATTR.throttled] === true && Number(b.attributes[ATTR.throttledMs]) > 0));
    assert.ok(result.throttledMs > 0);
    const [run] = s.spans.byName(SPAN.backfill);
    const events = run!.events.map((e) => e.name);
    assert.equal(events.filter((e) => e === 'yield.start').length >= 1, true, events.join(','));
    assert.equal(events.filter((e) => e === 'yield.start').length, events.filter((e) => e === 'yield.end').length);
    const end = run!.events.find((e) => e.name === 'yield.end')!;
    assert.ok(Number(end.attributes?.['phaseflag.yield.lock_waits']) >= 1);
    assert.ok(s.logs.some((l) => /backfill stopped yielding to the application after \d+ ms/.test(l.message)));
    assert.ok(
      (await s.metrics.sum(METRIC.backfillYields, { [ATTR.migrationId]: 'users-yield', [ATTR.reason]: 'lock_wait' })) >=
        1,
    );
    assert.ok((await s.metrics.histogramCount(METRIC.throttleWait, { [ATTR.migrationId]: 'users-yield' })) >= 1);
  });

  it('refuses a bad setting of the watch, in the declaration and in the run options, before anything runs', async () => {
    const { ctx } = s;
    assert.throws(
      () => usersMigration('users-bad', 'users_bad', { throttle: { yieldToApplication: 'yes' as unknown as boolean } }),
      (e: { code?: string }) => e.code === 'PF_INVALID_MIGRATION',
    );
    await createUsers(ctx.knex, 'users_bad', 10);
    const r = await resolveFor(ctx.knex, usersMigration('users-bad', 'users_bad'));
    await registerMigration(ctx, r);
    for (const throttle of [{ maxLoad: 0 }, { yieldSampleMs: 1 }]) {
      await assert.rejects(runBackfill(ctx, r, { throttle }), (e: { code?: string; value?: unknown }) => {
        assert.equal(e.code, 'PF_INVALID_OPTIONS');
        assert.deepEqual(e.value, { ...r.migration.throttle, ...throttle });
        return true;
      });
    }
    assert.equal((await rangeTotals(ctx, 'users-bad')).ranges, 0, 'nothing planned');
  });

  it('holds back while more client backends than maxLoad run a statement, and resumes after', async () => {
    const { ctx } = s;
    await createUsers(ctx.knex, 'users_load', 2000);
    // Other suites share the server: a threshold above their usual handful of statements, and more sleepers.
    const maxLoad = 10;
    const sleepers = 16;
    const r = await resolveFor(
      ctx.knex,
      usersMigration('users-load', 'users_load', { throttle: { maxLoad, yieldSampleMs: 10 } }),
    );
    await registerMigration(ctx, r);
    const busy = s.suite.newKnex({ pool: { max: sleepers } });
    const load = Promise.all(
      Array.from({ length: sleepers }, () =>
        busy.transaction(async (trx) => {
          await trx.raw('SELECT pg_sleep(1.5)');
        }),
      ),
    );
    try {
      await waitFor(
        async () =>
          (
            await ctx.knex.raw(
              "SELECT count(*)::int AS n FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'SELECT pg_sleep(1.5)%'",
            )
          ).rows[0].n >= sleepers,
        { description: 'the sleepers to run' },
      );
      const running = runBackfill(ctx, r, { batch: { size: 200, targetBatchMs: 0 } });
      await waitFor(
        () => s.logs.some((l) => /backfill yielding to the application: \d+ client backends/.test(l.message)),
        {
          description: 'the watch to see the load',
        },
      );
      await holdsFor(async () => (await rangeTotals(ctx, 'users-load')).batches === 0, 300, {
        description: 'nothing committed under load',
      });
      await load;
      const result = await running;
      assert.equal(result.completed, true);
      assert.equal((await rangeTotals(ctx, 'users-load')).rowsDone, 2000);
      assert.ok(result.throttledMs >= 300, `held back ${result.throttledMs} ms`);
      const [run] = s.spans.byName(SPAN.backfill);
      const events = run!.events.map((e) => e.name);
      assert.ok(events.includes('yield.start') && events.includes('yield.end'), events.join(','));
      const end = run!.events.find((e) => e.name === 'yield.end')!;
      assert.ok(Number(end.attributes?.['phaseflag.yield.load_holds']) >= 1);
      assert.ok(
        (await s.metrics.sum(METRIC.backfillYields, { [ATTR.migrationId]: 'users-load', [ATTR.reason]: 'load' })) >= 1,
      );
    } finally {
      await load.catch(() => undefined);
      await busy.destroy();
    }
  });
});
