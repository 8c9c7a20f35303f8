import assert from 'node:assert/strict';
import { ATTR, SPAN, isPhaseflagError } from '@phaseflag/core';
import { resetBackfill, runBackfill } from '../src/operations/backfill/index.js';
import {
  createUsers,
  migrationFor,
  rangeTotals,
  registerMigration,
  resolveFor,
  useBackfillSuite,
  usersMigration,
} from './fixtures/backfill-suite.js';

describe('backfill', function () {
  this.timeout(120_000);
  const s = useBackfillSuite('backfill batches');

  it('backfills a type change, int cents to numeric(12,2)', async () => {
    const { ctx } = s;
    await ctx.knex.raw(
      'CREATE TABLE orders (id integer PRIMARY KEY, amount_cents integer NOT NULL, amount numeric(12,2))',
    );
    await ctx.knex.raw(
      'INSERT INTO orders (id, amount_cents) SELECT g, (g * 7919) % 1000003 FROM generate_series(1, 20000) AS g',
    );
    const r = await resolveFor(
      ctx.knex,
      migrationFor({
        id: 'orders-amount',
        table: 'orders',
        oldColumn: 'amount_cents',
        newColumn: { name: 'amount', type: 'numeric(12,2)' },
        backfill: 'amount_cents / 100.0',
      }),
    );
    await registerMigration(ctx, r);

    const result = await runBackfill(ctx, r);

    assert.equal(result.completed, true);
    assert.equal(result.rowsUpdated, 20_000);
    assert.equal(
      (await ctx.knex.raw('SELECT count(*)::int AS n FROM orders WHERE amount IS DISTINCT FROM amount_cents / 100.0'))
        .rows[0].n,
      0,
    );
    assert.equal((await ctx.knex.raw('SELECT amount::text AS a FROM orders WHERE id = 1')).rows[0].a, '79.19');
    // A second run finds nothing left to write: rows already equal to the expression are skipped, not rewritten.
    await resetBackfill(ctx, 'orders-amount');
    const again = await runBackfill(ctx, r);
    assert.equal(again.rowsScanned, 20_000);
    assert.equal(again.rowsUpdated, 0);
  });

  it('stops on a value the new type cannot hold, naming the row (key, value, error), with the checkpoint kept', async () => {
    const { ctx } = s;
    await ctx.knex.raw('CREATE TABLE prices (id integer PRIMARY KEY, cents integer NOT NULL, price numeric(6,2))');
    await ctx.knex.raw(
      'INSERT INTO prices (id, cents) SELECT g, CASE WHEN g = 2500 THEN 100000000 ELSE g END FROM generate_series(1, 4000) AS g',
    );
    const r = await resolveFor(
      ctx.knex,
      migrationFor({
        id: 'prices',
        table: 'prices',
        oldColumn: 'cents',
        newColumn: { name: 'price', type: 'numeric(6,2)' },
        backfill: 'cents / 100.0',
      }),
    );
    await registerMigration(ctx, r);

    await assert.rejects(runBackfill(ctx, r, { batch: { size: 1000, targetBatchMs: 0 } }), (e: unknown) => {
      // Not the batch's lower bound ([2000]): the row itself, found by halving the failed batch.
      assert.ok(isPhaseflagError(e, 'PF_BACKFILL_ROW_FAILED'), String(e));
      assert.match(e.message, /key \[2500\]: cents = "100000000": numeric field overflow/);
      assert.deepEqual(
        { ...(e.value as Record<string, unknown>), rows: undefined },
        {
          key: [2500],
          oldValue: '100000000',
          error: 'numeric field overflow',
          sqlstate: '22003',
          rows: undefined,
          rowsUpdated: 2000,
        },
      );
      return true;
    });
    assert.deepEqual(await rangeTotals(ctx, 'prices'), { rowsDone: 2000, batches: 2, ranges: 1, done: 0 });
    assert.equal(s.spans.byName(SPAN.backfill)[0]!.status.code, 2 /* ERROR */);
  });

  it('sizes batches towards targetBatchMs, and keeps them fixed when it is 0', async () => {
    const { ctx } = s;
    await createUsers(ctx.knex, 'users_adapt', 60_000);
    const r = await resolveFor(ctx.knex, usersMigration('users-adapt', 'users_adapt'));
    await registerMigration(ctx, r);
    const sizes = () => s.spans.byName(SPAN.backfillBatch).map((b) => Number(b.attributes[ATTR.batchSize]));

    // Too small a start: 100 rows take far less than 40 ms, so batches grow.
    await runBackfill(ctx, r, {
      batch: { size: 100, minSize: 50, maxSize: 50_000, targetBatchMs: 40 },
      shouldContinue: () => sizes().length < 12,
    });
    const growing = sizes();
    // They grow until a batch takes about the target: by 4× on a quiet machine; on a loaded one 100 rows may already
    // take half the target, and then reaching the target is the growth there is to see.
    const lastMs = s.spans
      .byName(SPAN.backfillBatch)
      .slice(-3)
      .map((b) => (b.duration[0] * 1e9 + b.duration[1]) / 1e6);
    const reachedTarget = lastMs.reduce((a, b) => a + b, 0) / lastMs.length >= 20;
    assert.ok(
      growing[growing.length - 1]! > growing[0]! && (growing[growing.length - 1]! >= 4 * growing[0]! || reachedTarget),
      `batches grew: ${growing.join(', ')} (last batches took ${lastMs.map((m) => m.toFixed(1)).join(', ')} ms)`,
    );

    // Too large a start with a tiny target: they shrink.
    await resetBackfill(ctx, 'users-adapt');
    await ctx.knex.raw('UPDATE users_adapt SET email_lower = NULL');
    s.spans.reset();
    await runBackfill(ctx, r, {
      batch: { size: 20_000, minSize: 100, maxSize: 20_000, targetBatchMs: 2 },
      shouldContinue: () => sizes().length < 6,
    });
    const shrinking = sizes();
    assert.ok(shrinking[shrinking.length - 1]! <= shrinking[0]! / 4, `batches shrank: ${shrinking.join(', ')}`);

    await resetBackfill(ctx, 'users-adapt');
    s.spans.reset();
    const fixed = await runBackfill(ctx, r, { batch: { size: 7000, targetBatchMs: 0 } });
    assert.equal(fixed.completed, true);
    assert.deepEqual([...new Set(sizes())], [7000]);
    assert.equal(fixed.batches, Math.ceil(60_000 / 7000));
  });
});
