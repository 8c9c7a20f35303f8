import assert from 'node:assert/strict';
import { ATTR, METRIC, SPAN } from '@phaseflag/core';
import {
  backfillProgress,
  prepareBackfill,
  resetBackfill,
  runBackfill,
  type BackfillResult,
} from '../src/operations/backfill/index.js';
import {
  createUsers,
  migrationFor,
  rangeTotals,
  registerMigration,
  resolveFor,
  useBackfillSuite,
  usersMigration,
  wrongRows,
} from './fixtures/backfill-suite.js';

const rate = (rows: number, result: BackfillResult) => Math.round(rows / (result.durationMs / 1000));

describe('backfill', function () {
  this.timeout(120_000);
  const s = useBackfillSuite('backfill');

  it('fills every row of a 100k-row table with lower(email), one worker, one span per batch', async () => {
    const { ctx } = s;
    await createUsers(ctx.knex, 'users_one', 100_000);
    const r = await resolveFor(ctx.knex, usersMigration('users-one', 'users_one'));
    await registerMigration(ctx, r);

    const result = await runBackfill(ctx, r, { batch: { workers: 1 } });

    assert.equal(result.completed, true);
    assert.equal(result.stoppedBy, 'complete');
    assert.equal(result.rowsUpdated, 100_000);
    assert.equal(result.rowsScanned, 100_000);
    assert.equal(await wrongRows(ctx.knex, 'users_one', 'email_lower', 'lower(email)'), 0);
    const m = (
      await ctx.knex.raw(
        'SELECT phase, rows_backfilled, backfill_started_at, backfill_completed_at FROM ??.migrations WHERE id = ?',
        [ctx.stateSchema, 'users-one'],
      )
    ).rows[0];
    assert.equal(m.phase, 'backfilling', 'the runner never moves the phase');
    assert.equal(Number(m.rows_backfilled), 100_000);
    assert.ok(m.backfill_started_at && m.backfill_completed_at);
    const totals = await rangeTotals(ctx, 'users-one');
    assert.deepEqual(totals, { rowsDone: 100_000, batches: result.batches, ranges: 1, done: 1 });

    const [run] = s.spans.byName(SPAN.backfill);
    assert.ok(run);
    assert.equal(run.attributes[ATTR.migrationId], 'users-one');
    assert.equal(run.attributes[ATTR.rows], 100_000);
    assert.equal(run.attributes['phaseflag.backfill.stopped_by'], 'complete');
    assert.equal(run.attributes['phaseflag.backfill.workers'], 1);
    const batches = s.spans.byName(SPAN.backfillBatch);
    assert.equal(batches.length, result.batches);
    assert.ok(
      batches.every(
        (b) =>
          b.parentSpanContext?.spanId === run.spanContext().spanId &&
          b.spanContext().traceId === run.spanContext().traceId,
      ),
    );
    assert.equal(
      batches.reduce((n, b) => n + Number(b.attributes[ATTR.rows]), 0),
      100_000,
    );
    assert.equal(batches[0]!.attributes[ATTR.keyFrom], '', 'the first batch starts at the beginning of the range');
    assert.equal(batches[batches.length - 1]!.attributes[ATTR.keyTo], '[100000]');
    assert.equal(await s.metrics.sum(METRIC.rowsBackfilled, { [ATTR.migrationId]: 'users-one' }), 100_000);
    assert.equal(
      await s.metrics.histogramCount(METRIC.batchDuration, { [ATTR.migrationId]: 'users-one' }),
      result.batches,
    );
    console.log(
      `      (100k rows, 1 worker: ${result.durationMs} ms, ${rate(100_000, result)} rows/s, ${result.batches} batches)`,
    );
  });

  it('splits 100k rows into two disjoint ranges for two workers, with nothing between them', async () => {
    const { ctx } = s;
    await createUsers(ctx.knex, 'users_two', 100_000);
    const r = await resolveFor(ctx.knex, usersMigration('users-two', 'users_two'));
    await registerMigration(ctx, r);

    const plan = await prepareBackfill(ctx, r, { workers: 2 });
    assert.equal(plan.split, 'arithmetic');
    assert.deepEqual(
      plan.ranges.map((x) => [x.lowerKey, x.upperKey]),
      [
        [null, [50000]],
        [[50000], [100000]],
      ],
    );
    const result = await runBackfill(ctx, r, { batch: { workers: 2 } });

    assert.equal(result.completed, true);
    assert.equal(result.workers, 2);
    assert.equal(result.rowsUpdated, 100_000);
    assert.equal(await wrongRows(ctx.knex, 'users_two', 'email_lower', 'lower(email)'), 0);
    const totals = await rangeTotals(ctx, 'users-two');
    assert.equal(totals.rowsDone, 100_000, 'each row counted by exactly one range');
    const workers = new Set(s.spans.byName(SPAN.backfillBatch).map((b) => b.attributes[ATTR.worker]));
    assert.deepEqual([...workers].sort(), [0, 1]);
    console.log(
      `      (100k rows, 2 workers: ${result.durationMs} ms, ${rate(100_000, result)} rows/s, ${result.batches} batches)`,
    );
  });

  it('changes each row exactly once with four workers, boundary keys included', async () => {
    const { ctx } = s;
    await createUsers(ctx.knex, 'users_once', 30_001, { countTouches: true });
    const r = await resolveFor(ctx.knex, usersMigration('users-once', 'users_once'));
    await registerMigration(ctx, r);

    const plan = await prepareBackfill(ctx, r, { workers: 4 });
    assert.equal(plan.ranges.length, 4);
    for (let i = 1; i < plan.ranges.length; i++)
      assert.deepEqual(plan.ranges[i]!.lowerKey, plan.ranges[i - 1]!.upperKey);
    const result = await runBackfill(ctx, r, { batch: { workers: 4, size: 1000, targetBatchMs: 0 } });

    assert.equal(result.completed, true);
    const touches = (await ctx.knex.raw('SELECT touches, count(*)::int AS n FROM users_once GROUP BY touches')).rows;
    assert.deepEqual(touches, [{ touches: 1, n: 30_001 }]);
    const bounds = plan.ranges.map((x) => (x.upperKey as number[])[0]);
    const edge = (
      await ctx.knex.raw(
        'SELECT count(*)::int AS n FROM users_once WHERE id = ANY(?) AND email_lower = lower(email) AND touches = 1',
        [bounds],
      )
    ).rows[0].n;
    assert.equal(edge, bounds.length);
    assert.equal((await rangeTotals(ctx, 'users-once')).rowsDone, 30_001);
  });

  it('walks a composite primary key (int, text) with sampled boundaries and row comparisons', async () => {
    const { ctx } = s;
    await ctx.knex
      .raw(`CREATE TABLE accounts (tenant_id integer, code text, name text NOT NULL, name_upper text, touches int NOT NULL DEFAULT 0,
                        PRIMARY KEY (tenant_id, code))`);
    await ctx.knex.raw(`INSERT INTO accounts (tenant_id, code, name)
                        SELECT g % 37, 'c' || (g / 37) || CASE WHEN g % 2 = 0 THEN '''quote' ELSE ' space' END, 'name ' || g
                          FROM generate_series(1, 25000) AS g`);
    await ctx.knex.raw(`CREATE FUNCTION pf_touch_upper() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.name_upper IS DISTINCT FROM OLD.name_upper THEN NEW.touches := OLD.touches + 1; END IF; RETURN NEW; END $$`);
    await ctx.knex.raw(
      'CREATE TRIGGER pf_count_touch BEFORE UPDATE ON accounts FOR EACH ROW EXECUTE FUNCTION pf_touch_upper()',
    );
    const r = await resolveFor(
      ctx.knex,
      migrationFor({
        id: 'accounts-upper',
        table: 'accounts',
        primaryKey: ['tenant_id', 'code'],
        oldColumn: 'name',
        newColumn: { name: 'name_upper', type: 'text' },
        backfill: 'upper(name)',
      }),
    );
    await registerMigration(ctx, r);

    const plan = await prepareBackfill(ctx, r, { workers: 3 });
    assert.equal(plan.split, 'sample');
    assert.equal(plan.ranges.length, 3);
    assert.equal(plan.ranges[0]!.upperKey.length, 2);
    const result = await runBackfill(ctx, r, { batch: { workers: 3, size: 700, targetBatchMs: 0 } });

    assert.equal(result.completed, true);
    assert.deepEqual((await ctx.knex.raw('SELECT touches, count(*)::int AS n FROM accounts GROUP BY touches')).rows, [
      { touches: 1, n: 25_000 },
    ]);
    assert.equal(await wrongRows(ctx.knex, 'accounts', 'name_upper', 'upper(name)'), 0);
    assert.equal((await rangeTotals(ctx, 'accounts-upper')).rowsDone, 25_000);
    const keyTo = s.spans.byName(SPAN.backfillBatch).map((b) => JSON.parse(String(b.attributes[ATTR.keyTo])));
    assert.ok(keyTo.every((k) => Array.isArray(k) && k.length === 2));
  });

  it('marks an empty table done at once, and reports progress for status displays', async () => {
    const { ctx } = s;
    await createUsers(ctx.knex, 'users_empty', 0);
    const r = await resolveFor(ctx.knex, usersMigration('users-empty', 'users_empty'));
    await registerMigration(ctx, r);
    const plan = await prepareBackfill(ctx, r, { workers: 4 });
    assert.equal(plan.split, 'empty');
    assert.equal(plan.ranges.length, 1);
    assert.equal(plan.ranges[0]!.done, true);
    const result = await runBackfill(ctx, r);
    assert.deepEqual([result.completed, result.stoppedBy, result.batches], [true, 'complete', 0]);

    await createUsers(ctx.knex, 'users_progress', 10_000);
    const p = await resolveFor(ctx.knex, usersMigration('users-progress', 'users_progress'));
    await registerMigration(ctx, p);
    const seen: number[] = [];
    await runBackfill(ctx, p, { batch: { size: 1000, targetBatchMs: 0 }, onProgress: (x) => seen.push(x.rowsDone) });
    assert.deepEqual(seen, [1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 10000]);
    const progress = await backfillProgress(ctx, 'users-progress');
    assert.equal(progress.done, true);
    assert.equal(progress.rowsDone, 10_000);
    assert.equal(progress.rowsEstimate, 10_000);
    assert.deepEqual(
      progress.ranges.map((x) => [x.checkpoint, x.done, x.batches]),
      [[[10000], true, 10]],
    );

    const reset = await resetBackfill(ctx, 'users-progress');
    assert.equal(reset.rangesDeleted, 1);
    const after = await backfillProgress(ctx, 'users-progress');
    assert.deepEqual([after.done, after.rowsDone, after.ranges.length], [false, 0, 0]);
  });
});
