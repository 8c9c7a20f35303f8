import assert from 'node:assert/strict';
import { ATTR, SPAN, isPhaseflagError } from '@phaseflag/core';
import { holdsFor, waitFor } from '@phaseflag/testkit';
import { runBackfill, type BackfillProgress } from '../src/operations/backfill/index.js';
import { findBackfillRunner } from '../src/operations/backfill/holder.js';
import { readBackfillKnobs, setBackfillKnobs } from '../src/operations/backfill/knobs.js';
import {
  createUsers,
  rangeTotals,
  registerMigration,
  resolveFor,
  setupBackfillSuite,
  usersMigration,
  wrongRows,
  type BackfillSuite,
} from './fixtures/backfill-suite.js';

describe('backfill runtime knobs', function () {
  this.timeout(60_000);
  let s: BackfillSuite;

  before(async () => {
    s = await setupBackfillSuite('backfill knobs');
  });
  after(async () => {
    await s?.suite.cleanup();
  });
  beforeEach(() => {
    s.spans.reset();
  });

  it('stores knobs merged, clears one with null, records each change, and refuses bad values and unknown migrations', async () => {
    const { ctx } = s;
    await createUsers(ctx.knex, 'users_store', 10);
    const r = await resolveFor(ctx.knex, usersMigration('knobs-store', 'users_store'));
    await registerMigration(ctx, r, 'dual-write');

    assert.deepEqual(await readBackfillKnobs(ctx.knex, ctx.stateSchema, 'knobs-store'), {
      batchSize: null,
      throttle: false,
      pauseMs: null,
    });
    assert.deepEqual(await setBackfillKnobs(ctx, 'knobs-store', { batchSize: 2000 }), {
      batchSize: 2000,
      throttle: false,
      pauseMs: null,
    });
    assert.deepEqual(await setBackfillKnobs(ctx, 'knobs-store', { throttle: true, pauseMs: 50 }), {
      batchSize: 2000,
      throttle: true,
      pauseMs: 50,
    });
    assert.deepEqual(await setBackfillKnobs(ctx, 'knobs-store', { batchSize: null }), {
      batchSize: null,
      throttle: true,
      pauseMs: 50,
    });
    const events = (
      await ctx.knex.raw(
        "SELECT action, detail FROM ??.events WHERE migration_id = ? AND action = 'set-knobs' ORDER BY id",
        [ctx.stateSchema, 'knobs-store'],
      )
    ).rows;
    assert.equal(events.length, 3);
    assert.deepEqual(events[2].detail.patch, { batchSize: null });

    for (const bad of [{ batchSize: 0 }, { batchSize: 1.5 }, { throttle: 'yes' }, { pauseMs: -1 }, { chunk: 3 }]) {
      await assert.rejects(setBackfillKnobs(ctx, 'knobs-store', bad as never), (e) =>
        isPhaseflagError(e, 'PF_INVALID_OPTIONS'),
      );
    }
    await assert.rejects(setBackfillKnobs(ctx, 'no-such-migration', { batchSize: 10 }), (e) =>
      isPhaseflagError(e, 'PF_UNKNOWN_MIGRATION'),
    );
    assert.deepEqual(
      await readBackfillKnobs(ctx.knex, ctx.stateSchema, 'knobs-store'),
      { batchSize: null, throttle: true, pauseMs: 50 },
      'refused changes change nothing',
    );
  });

  it('a running backfill takes a batch size set from another process before its next batch', async () => {
    const { ctx } = s;
    await createUsers(ctx.knex, 'users_size', 3000);
    const r = await resolveFor(
      ctx.knex,
      usersMigration('knobs-size', 'users_size', { batch: { size: 100, targetBatchMs: 0, pauseMs: 40 } }),
    );
    await registerMigration(ctx, r);
    const seen: BackfillProgress[] = [];
    // Batches ended when the runner received the knob (its NOTIFY may take a moment under load).
    let receivedAt: number | undefined;
    const run = runBackfill(ctx, r, {
      onProgress: (p) => {
        seen.push(p);
        if (receivedAt === undefined && p.knobs?.batchSize === 700)
          receivedAt = s.spans.byName(SPAN.backfillBatch).length;
      },
    });
    await waitFor(() => (seen.at(-1)?.ranges[0]?.batches ?? 0) >= 3, {
      timeoutMs: 10_000,
      description: 'three batches',
    });

    const other = s.otherContext();
    await setBackfillKnobs(other, 'knobs-size', { batchSize: 700 });
    const result = await run;

    assert.equal(result.completed, true);
    assert.equal(await wrongRows(ctx.knex, 'users_size', 'email_lower', 'lower(email)'), 0);
    assert.equal((await rangeTotals(ctx, 'knobs-size')).rowsDone, 3000, 'no row skipped or counted twice');
    const sizes = s.spans.byName(SPAN.backfillBatch).map((b) => Number(b.attributes[ATTR.batchSize]));
    // The notification may land while one batch is in flight: at most one more batch of the old size.
    const firstNew = sizes.indexOf(700);
    assert.ok(receivedAt !== undefined, 'the runner reported the knob');
    assert.ok(
      firstNew >= 3 && firstNew <= receivedAt + 1,
      `batch sizes ${sizes.join(',')} (knob received after ${receivedAt} batches)`,
    );
    assert.ok(
      sizes.slice(firstNew).every((n) => n === 700),
      `every later batch is 700: ${sizes.join(',')}`,
    );
    assert.ok(
      seen.some((p) => p.batchSize === 700 && p.knobs?.batchSize === 700),
      'progress shows the knob',
    );
  });

  it('the operator throttle holds the backfill between batches until it is turned off', async () => {
    const { ctx } = s;
    await createUsers(ctx.knex, 'users_throttle', 2000);
    const r = await resolveFor(
      ctx.knex,
      usersMigration('knobs-throttle', 'users_throttle', {
        batch: { size: 100, targetBatchMs: 0, pauseMs: 20 },
        throttle: { checkIntervalMs: 50 },
      }),
    );
    await registerMigration(ctx, r);
    const seen: BackfillProgress[] = [];
    const run = runBackfill(ctx, r, { onProgress: (p) => seen.push(p) });
    await waitFor(() => (seen.at(-1)?.ranges[0]?.batches ?? 0) >= 2, { timeoutMs: 10_000, description: 'two batches' });

    await setBackfillKnobs(s.otherContext(), 'knobs-throttle', { throttle: true });
    await waitFor(() => seen.some((p) => p.throttled === true), {
      timeoutMs: 5_000,
      description: 'the runner to report itself throttled',
    });
    const held = (await rangeTotals(ctx, 'knobs-throttle')).rowsDone;
    await holdsFor(async () => (await rangeTotals(ctx, 'knobs-throttle')).rowsDone === held, 600, {
      description: 'no batch while throttled',
    });
    assert.equal((await rangeTotals(ctx, 'knobs-throttle')).rowsDone, held, 'no batch while throttled');
    assert.ok(held < 2000);
    const runner = await findBackfillRunner(s.otherContext().knex, s.ctx.stateSchema, 'knobs-throttle');
    assert.ok(runner && runner.pid > 0, 'another process sees who runs the backfill');

    await setBackfillKnobs(ctx, 'knobs-throttle', { throttle: false });
    const result = await run;
    assert.equal(result.completed, true);
    assert.ok(result.throttledMs >= 500, `throttled ${result.throttledMs} ms`);
    assert.equal(
      await findBackfillRunner(ctx.knex, ctx.stateSchema, 'knobs-throttle'),
      null,
      'no runner once it has ended',
    );
    assert.equal(await wrongRows(ctx.knex, 'users_throttle', 'email_lower', 'lower(email)'), 0);
  });

  it("a delay between batches set while the backfill runs slows it down; null gives back the migration's", async () => {
    const { ctx } = s;
    await createUsers(ctx.knex, 'users_delay', 1500);
    const r = await resolveFor(
      ctx.knex,
      usersMigration('knobs-delay', 'users_delay', { batch: { size: 100, targetBatchMs: 0, pauseMs: 0 } }),
    );
    await registerMigration(ctx, r);
    await setBackfillKnobs(ctx, 'knobs-delay', { pauseMs: 150 });
    const started = Date.now();
    const seen: BackfillProgress[] = [];
    // Batches done when the runner received the cleared knob (its NOTIFY may take a moment under load).
    let clearedAfter: number | undefined;
    const run = runBackfill(ctx, r, {
      onProgress: (p) => {
        seen.push(p);
        if (clearedAfter === undefined && p.knobs?.pauseMs === null && seen.some((q) => q.knobs?.pauseMs === 150))
          clearedAfter = p.ranges[0]?.batches ?? 0;
      },
    });
    await waitFor(() => (seen.at(-1)?.ranges[0]?.batches ?? 0) >= 4, {
      timeoutMs: 10_000,
      description: 'four batches',
    });
    assert.ok(Date.now() - started >= 3 * 150, 'batches wait the delay');
    await setBackfillKnobs(ctx, 'knobs-delay', { pauseMs: null });
    const result = await run;
    assert.equal(result.completed, true);
    assert.equal(result.batches, 15);
    // The gap before each batch: the delay until the knob was cleared (and before the batch then in flight), then none.
    const ms = (t: [number, number]) => t[0] * 1000 + t[1] / 1e6;
    const batches = s.spans.byName(SPAN.backfillBatch).sort((a, b) => ms(a.startTime) - ms(b.startTime));
    // A 150 ms timer may fire a millisecond early as the spans' clock measures it: 148 still tells a delayed batch
    // (the gap without the knob is a few milliseconds).
    const delayed = batches.slice(1).filter((b, i) => ms(b.startTime) - ms(batches[i]!.endTime) >= 148).length;
    assert.ok(clearedAfter !== undefined, 'the runner reported the cleared knob');
    assert.ok(
      delayed >= 3 && delayed <= clearedAfter + 1,
      `${delayed} delayed batches; the knob was cleared after ${clearedAfter} of 15`,
    );
  });
});
