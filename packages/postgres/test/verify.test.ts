import assert from 'node:assert/strict';
import { ATTR, SPAN } from '@phaseflag/core';
import knex from 'knex';
import { runBackfill } from '../src/operations/backfill/index.js';
import { createContext } from '../src/context.js';
import { verifyMigration } from '../src/operations/verify.js';
import {
  createUsers,
  migrationFor,
  registerMigration,
  resolveFor,
  setupBackfillSuite,
  usersMigration,
  type BackfillSuite,
} from './fixtures/backfill-suite.js';

describe('verify', function () {
  this.timeout(60_000);
  let s: BackfillSuite;

  before(async () => {
    s = await setupBackfillSuite('verify');
  });
  after(async () => {
    await s?.suite.cleanup();
  });
  beforeEach(() => {
    s.spans.reset();
  });

  it('is clean after a backfill, and reports a row corrupted by hand with its key', async () => {
    const { ctx } = s;
    await createUsers(ctx.knex, 'users_v', 20_000);
    const r = await resolveFor(ctx.knex, usersMigration('users-v', 'users_v'));
    await registerMigration(ctx, r);
    await runBackfill(ctx, r);

    const clean = await verifyMigration(ctx, r, { batchSize: 5000 });
    assert.deepEqual(
      {
        clean: clean.clean,
        rowsChecked: clean.rowsChecked,
        mismatches: clean.mismatches,
        sampleKeys: clean.sampleKeys,
        check: clean.check,
        complete: clean.complete,
      },
      { clean: true, rowsChecked: 20_000, mismatches: 0, sampleKeys: [], check: 'expression', complete: true },
    );
    const [span] = s.spans.byName(SPAN.verify);
    assert.equal(span!.attributes[ATTR.mismatches], 0);
    const batches = s.spans.byName(SPAN.verifyBatch);
    assert.ok(batches.length >= 4 && batches.every((b) => b.parentSpanContext?.spanId === span!.spanContext().spanId));
    assert.equal(
      batches.reduce((n, b) => n + Number(b.attributes[ATTR.rows]), 0),
      20_000,
    );

    // A writer that bypassed dual-write: one wrong value, one NULL.
    await ctx.knex.raw("UPDATE users_v SET email_lower = 'someone@else.org' WHERE id = 12345");
    await ctx.knex.raw('UPDATE users_v SET email_lower = NULL WHERE id = 777');
    s.spans.reset();
    const dirty = await verifyMigration(ctx, r, { batchSize: 5000 });
    assert.equal(dirty.clean, false);
    assert.equal(dirty.mismatches, 2);
    assert.deepEqual(dirty.sampleKeys, [[777], [12345]]);
    assert.equal(s.spans.byName(SPAN.verify)[0]!.attributes[ATTR.mismatches], 2);
  });

  it('names mismatching composite keys, caps the sample, and counts every mismatch', async () => {
    const { ctx } = s;
    await ctx.knex.raw(
      'CREATE TABLE accounts_v (tenant_id integer, code text, name text NOT NULL, name_upper text, PRIMARY KEY (tenant_id, code))',
    );
    await ctx.knex.raw(
      `INSERT INTO accounts_v (tenant_id, code, name) SELECT g % 10, 'c' || g, 'n' || g FROM generate_series(1, 3000) AS g`,
    );
    const r = await resolveFor(
      ctx.knex,
      migrationFor({
        id: 'accounts-v',
        table: 'accounts_v',
        primaryKey: ['tenant_id', 'code'],
        oldColumn: 'name',
        newColumn: { name: 'name_upper', type: 'text' },
        backfill: 'upper(name)',
      }),
    );
    await registerMigration(ctx, r);

    const before = await verifyMigration(ctx, r, { batchSize: 1000, maxSampleKeys: 3 });
    assert.equal(before.mismatches, 3000, 'nothing is backfilled yet');
    assert.deepEqual(before.sampleKeys, [
      [0, 'c10'],
      [0, 'c100'],
      [0, 'c1000'],
    ]);

    await runBackfill(ctx, r);
    await ctx.knex.raw("UPDATE accounts_v SET name_upper = 'X' WHERE (tenant_id, code) IN ((3, 'c13'), (7, 'c2997'))");
    const after = await verifyMigration(ctx, r, { batchSize: 1000 });
    assert.equal(after.mismatches, 2);
    assert.deepEqual(after.sampleKeys, [
      [3, 'c13'],
      [7, 'c2997'],
    ]);
  });

  it('reports bigint keys above 2^53 exactly, as strings', async () => {
    const { ctx } = s;
    await ctx.knex.raw('CREATE TABLE big_v (id bigint PRIMARY KEY, v integer NOT NULL, v2 bigint)');
    await ctx.knex.raw('INSERT INTO big_v (id, v) SELECT 9007199254740990 + g, g FROM generate_series(1, 10) AS g');
    const r = await resolveFor(
      ctx.knex,
      migrationFor({
        id: 'big-v',
        table: 'big_v',
        oldColumn: 'v',
        newColumn: { name: 'v2', type: 'bigint' },
        backfill: 'v * 2',
      }),
    );
    await registerMigration(ctx, r);
    await runBackfill(ctx, r, { batch: { size: 3, minSize: 1, targetBatchMs: 0 } });
    await ctx.knex.raw('UPDATE big_v SET v2 = 0 WHERE id IN (9007199254740991, 9007199254740993)');
    const result = await verifyMigration(ctx, r, { batchSize: 4 });
    assert.deepEqual(result.sampleKeys, [[9007199254740991], ['9007199254740993']]);
  });

  it('checks only the NOT NULL wish of a brand-new column without a backfill expression', async () => {
    const { ctx } = s;
    await ctx.knex.raw('CREATE TABLE items_v (id integer PRIMARY KEY)');
    await ctx.knex.raw('INSERT INTO items_v SELECT g FROM generate_series(1, 2000) AS g');
    // As expand would add it: a constant default fills existing rows without a rewrite.
    await ctx.knex.raw("ALTER TABLE items_v ADD COLUMN status text DEFAULT 'active', ADD COLUMN note text");
    const status = await resolveFor(
      ctx.knex,
      migrationFor({
        id: 'items-status',
        table: 'items_v',
        newColumn: { name: 'status', type: 'text', nullable: false, default: 'active' },
      }),
    );
    const note = await resolveFor(
      ctx.knex,
      migrationFor({ id: 'items-note', table: 'items_v', newColumn: { name: 'note', type: 'text' } }),
    );

    assert.deepEqual(pick(await verifyMigration(ctx, status)), {
      clean: true,
      check: 'not-null',
      mismatches: 0,
      nulls: 0,
      rowsChecked: 2000,
    });
    await ctx.knex.raw('UPDATE items_v SET status = NULL WHERE id = 42');
    const dirty = await verifyMigration(ctx, status);
    assert.deepEqual(pick(dirty), { clean: false, check: 'not-null', mismatches: 1, nulls: 1, rowsChecked: 2000 });
    assert.deepEqual(dirty.sampleKeys, [[42]]);
    // Nullable and no expression: nothing to compare; the walk proves nothing beyond counting rows.
    assert.deepEqual(pick(await verifyMigration(ctx, note)), {
      clean: true,
      check: 'none',
      mismatches: 0,
      nulls: 0,
      rowsChecked: 2000,
    });
  });

  it('never reports an aborted walk as clean', async () => {
    const { ctx } = s;
    await createUsers(ctx.knex, 'users_abort_v', 5000);
    const r = await resolveFor(ctx.knex, usersMigration('users-abort-v', 'users_abort_v'));
    const stop = new AbortController();
    stop.abort();
    const result = await verifyMigration(ctx, r, { signal: stop.signal });
    assert.deepEqual([result.clean, result.complete, result.rowsChecked], [false, false, 0]);
  });

  it("evaluates the expression in the schemas it was resolved in, whatever the pool's search_path", async () => {
    const { ctx, suite } = s;
    await ctx.knex.raw(
      `CREATE FUNCTION norm_email(e text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT lower(trim(e)) $$`,
    );
    await createUsers(ctx.knex, 'users_path', 3000);
    const r = await resolveFor(ctx.knex, usersMigration('users-path', 'users_path', { backfill: 'norm_email(email)' }));
    assert.ok(r.searchPath.includes(suite.schema));
    await registerMigration(ctx, r);
    // A pool whose search_path does not include the suite schema: unqualified norm_email would not resolve.
    const elsewhere = knex({ client: 'pg', connection: suite.databaseUrl, pool: { min: 0, max: 3 } });
    try {
      await assert.rejects(elsewhere.raw("SELECT norm_email('A')"), /does not exist/);
      const other = createContext({ knex: elsewhere, stateSchema: ctx.stateSchema });
      const done = await runBackfill(other, r);
      assert.equal(done.completed, true);
      const result = await verifyMigration(other, r);
      assert.equal(result.clean, true);
      assert.equal(result.rowsChecked, 3000);
    } finally {
      await elsewhere.destroy();
    }
  });
});

function pick(v: { clean: boolean; check: string; mismatches: number; nulls: number; rowsChecked: number }) {
  return { clean: v.clean, check: v.check, mismatches: v.mismatches, nulls: v.nulls, rowsChecked: v.rowsChecked };
}
