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

/** The throttle query holds the runner back between batches; an abort ends the wait at once. */
describe('backfill: throttled', function () {
  this.timeout(120_000);
  const s = useBackfillSuite('backfill_throttle');

  it('holds back while the throttle query says so, logs the stretch once, and records it', async () => {
    const { ctx } = s;
    await createUsers(ctx.knex, 'users_throttle', 3000);
    await ctx.knex.raw('CREATE TABLE throttle_switch (hold boolean NOT NULL)');
    await ctx.knex.raw('INSERT INTO throttle_switch VALUES (true)');
    const r = await resolveFor(
      ctx.knex,
      usersMigration('users-throttle', 'users_throttle', {
        throttle: { query: 'SELECT hold FROM throttle_switch', checkIntervalMs: 50 },
      }),
    );
    await registerMigration(ctx, r);

    const running = runBackfill(ctx, r, { batch: { workers: 2, size: 1000, targetBatchMs: 0 } });
    // From the runner's first throttle check (after its sessions and ranges are set up), not from the call.
    await waitFor(() => s.logs.some((l) => /backfill throttled/.test(l.message)), {
      timeoutMs: 10_000,
      description: 'the runner to hold back',
    });
    await holdsFor(async () => (await rangeTotals(ctx, 'users-throttle')).batches === 0, 400, {
      description: 'nothing committed while throttled',
    });
    assert.equal((await rangeTotals(ctx, 'users-throttle')).batches, 0, 'nothing commits while throttled');
    await ctx.knex.raw('UPDATE throttle_switch SET hold = false');
    const result = await running;

    assert.equal(result.completed, true);
    assert.ok(result.throttledMs >= 300, `throttled ${result.throttledMs} ms`);
    const batchSpans = s.spans.byName(SPAN.backfillBatch);
    const first = batchSpans.filter((b) => b.attributes[ATTR.throttled] === true);
    assert.ok(first.length >= 1 && first.length <= 2, 'only the first batch of each worker waited');
    assert.ok(first.every((b) => Number(b.attributes[ATTR.throttledMs]) >= 300));
    assert.ok(
      batchSpans
        .filter((b) => b.attributes[ATTR.throttled] === false)
        .every((b) => b.attributes[ATTR.throttledMs] === 0),
    );
    const [run] = s.spans.byName(SPAN.backfill);
    assert.deepEqual(
      run!.events.map((e) => e.name),
      ['throttle.start', 'throttle.end'],
    );
    assert.equal(s.logs.filter((l) => /backfill throttled/.test(l.message)).length, 1);
    assert.equal(s.logs.filter((l) => /no longer throttled/.test(l.message)).length, 1);
    assert.ok((await s.metrics.histogramCount(METRIC.throttleWait, { [ATTR.migrationId]: 'users-throttle' })) >= 1);
  });

  it('ends a throttled wait promptly when the signal aborts', async () => {
    const { ctx } = s;
    await createUsers(ctx.knex, 'users_abort', 100);
    const r = await resolveFor(
      ctx.knex,
      usersMigration('users-abort', 'users_abort', { throttle: { query: 'SELECT true', checkIntervalMs: 30_000 } }),
    );
    await registerMigration(ctx, r);
    const stop = new AbortController();
    const running = runBackfill(ctx, r, { signal: stop.signal });
    // Inside the throttled wait: the first check said "hold back" and the runner sleeps until the next one (30 s).
    await waitFor(() => s.clock.sleeps.includes(30_000), {
      description: 'the runner to wait for its next throttle check',
    });
    const started = performance.now();
    stop.abort();
    const result = await running;
    assert.equal(result.stoppedBy, 'aborted');
    assert.equal(result.batches, 0);
    assert.ok(performance.now() - started < 2000);
  });
});
