import assert from 'node:assert/strict';
import { ATTR, SPAN, isPhaseflagError } from '@phaseflag/core';
import { startLoad, waitFor } from '@phaseflag/testkit';
import { prepareBackfill, runBackfill } from '../src/operations/backfill/index.js';
import {
  createUsers,
  rangeTotals,
  registerMigration,
  resolveFor,
  setPhase,
  useBackfillSuite,
  usersMigration,
  wrongRows,
} from './fixtures/backfill-suite.js';

/** A running backfill and the world around it: a pause, a second runner, the application writing the while. */
describe('backfill: pause, a second runner, live writes', function () {
  this.timeout(120_000);
  const s = useBackfillSuite('backfill_stops');

  it('stops after the current batch when the phase becomes paused, and a new run resumes from the checkpoint', async () => {
    const { ctx } = s;
    await createUsers(ctx.knex, 'users_pause', 20_000);
    const r = await resolveFor(ctx.knex, usersMigration('users-pause', 'users_pause'));
    await registerMigration(ctx, r);
    const other = s.otherContext();

    const running = runBackfill(ctx, r, { batch: { size: 500, targetBatchMs: 0, pauseMs: 15 } });
    await waitFor(async () => (await rangeTotals(other, 'users-pause')).batches >= 5, {
      description: 'five committed batches',
    });
    await setPhase(other, 'users-pause', 'paused');
    // The transition has committed: from here on no batch may commit.
    const atPause = await rangeTotals(other, 'users-pause');
    const first = await running;

    assert.equal(first.stoppedBy, 'phase-changed');
    assert.equal(first.completed, false);
    const afterStop = await rangeTotals(other, 'users-pause');
    assert.deepEqual(afterStop, atPause, 'no batch committed after the pause');
    assert.equal(afterStop.rowsDone, afterStop.batches * 500);
    const checkpoint = (
      await ctx.knex.raw('SELECT checkpoint::text AS c FROM ??.backfill_ranges WHERE migration_id = ?', [
        ctx.stateSchema,
        'users-pause',
      ])
    ).rows[0].c;
    assert.equal(checkpoint, `[${afterStop.batches * 500}]`);
    assert.equal(
      (await ctx.knex.raw('SELECT count(*)::int AS n FROM users_pause WHERE email_lower IS NOT NULL')).rows[0].n,
      afterStop.rowsDone,
    );

    // While paused a run does nothing.
    s.spans.reset();
    const idle = await runBackfill(ctx, r);
    assert.equal(idle.stoppedBy, 'phase-changed');
    assert.equal(idle.batches, 0);

    await setPhase(other, 'users-pause', 'backfilling');
    const second = await runBackfill(ctx, r, { batch: { size: 500, targetBatchMs: 0 } });
    assert.equal(second.completed, true);
    const [firstBatch] = s.spans.byName(SPAN.backfillBatch);
    assert.equal(firstBatch!.attributes[ATTR.keyFrom], checkpoint, 'the resumed run starts right after the checkpoint');
    assert.equal(second.rowsScanned, 20_000 - afterStop.rowsDone);
    assert.equal((await rangeTotals(ctx, 'users-pause')).rowsDone, 20_000);
    assert.equal(await wrongRows(ctx.knex, 'users_pause', 'email_lower', 'lower(email)'), 0);
  });

  it('refuses a second runner of the same migration with PF_BACKFILL_LOCKED', async () => {
    const { ctx } = s;
    await createUsers(ctx.knex, 'users_lock', 5000);
    const r = await resolveFor(ctx.knex, usersMigration('users-lock', 'users_lock'));
    await registerMigration(ctx, r);
    const other = s.otherContext();
    const stop = new AbortController();

    const first = runBackfill(ctx, r, { batch: { size: 100, targetBatchMs: 0, pauseMs: 20 }, signal: stop.signal });
    await waitFor(async () => (await rangeTotals(other, 'users-lock')).batches >= 1, {
      description: 'first runner working',
    });
    await assert.rejects(runBackfill(other, r), (e: unknown) => {
      assert.ok(isPhaseflagError(e, 'PF_BACKFILL_LOCKED'), String(e));
      assert.equal(e.name, 'ConflictError');
      assert.match(e.message, /backend pid \d+/);
      return true;
    });
    stop.abort();
    const stopped = await first;
    assert.equal(stopped.stoppedBy, 'aborted');
    // The lock went with the first run: a new runner takes over and finishes.
    const next = await runBackfill(other, r);
    assert.equal(next.completed, true);
    assert.equal(await wrongRows(ctx.knex, 'users_lock', 'email_lower', 'lower(email)'), 0);
  });

  it('never chases rows inserted after prepare, and ends with every row right under a dual-writing load', async () => {
    const { ctx } = s;
    await createUsers(ctx.knex, 'users_live', 40_000);
    const r = await resolveFor(ctx.knex, usersMigration('users-live', 'users_live'));
    await registerMigration(ctx, r);
    const plan = await prepareBackfill(ctx, r, { workers: 2 });
    assert.deepEqual(plan.upperKey, [40000]);

    // The application, dual-writing by hand: every write sets email_lower too, as the trigger or router would.
    const app = s.suite.newKnex({ pool: { min: 0, max: 4 } });
    let nextId = 40_000;
    const load = startLoad({
      knex: app,
      concurrency: 3,
      ops: [
        {
          name: 'insert',
          run: async (_i, db) => {
            const id = ++nextId;
            await db.raw(
              "INSERT INTO users_live (id, email, email_lower) VALUES (?, 'New' || ?::text || '@X.org', lower('New' || ?::text || '@X.org'))",
              [id, id, id],
            );
          },
        },
        {
          name: 'update',
          weight: 2,
          run: async (i, db) => {
            const id = 1 + ((i * 7919) % 40_000);
            await db.raw(
              "UPDATE users_live SET email = 'Changed' || ?::text || '@Y.org', email_lower = lower('Changed' || ?::text || '@Y.org') WHERE id = ?",
              [i, i, id],
            );
          },
        },
      ],
    });
    // The backfill starts once the application is writing, so that it runs under the load from its first batch.
    const result = await waitFor(() => load.snapshot().ops >= 20, { description: 'the application writing' })
      .then(() => runBackfill(ctx, r, { batch: { workers: 2, size: 1000, targetBatchMs: 0, pauseMs: 5 } }))
      .finally(() => load.stop());
    const report = await load.stop();
    assert.equal(report.errors, 0, JSON.stringify(report.errorSamples));
    assert.ok(report.byOp.insert!.ops > 10 && report.byOp.update!.ops > 10, JSON.stringify(report.byOp));
    assert.equal(result.completed, true);
    assert.equal(await wrongRows(ctx.knex, 'users_live', 'email_lower', 'lower(email)'), 0);
    const keysTo = s.spans
      .byName(SPAN.backfillBatch)
      .map((b) => (JSON.parse(String(b.attributes[ATTR.keyTo])) as number[])[0]!);
    assert.ok(Math.max(...keysTo) <= 40_000, 'no batch went past the snapshot bound');
    assert.equal((await rangeTotals(ctx, 'users-live')).rowsDone, 40_000);
    assert.ok(Number((await ctx.knex.raw('SELECT count(*) AS n FROM users_live')).rows[0].n) > 40_000);
  });
});
