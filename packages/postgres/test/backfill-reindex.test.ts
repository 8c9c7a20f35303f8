import assert from 'node:assert/strict';
import { ATTR, SPAN } from '@phaseflag/core';
import { waitFor } from '@phaseflag/testkit';
import type { Knex } from 'knex';
import { runBackfill } from '../src/operations/backfill/index.js';
import { REINDEX_ATTR, REINDEX_SPAN } from '../src/operations/backfill/reindex.js';
import {
  createUsers,
  registerMigration,
  resolveFor,
  usersMigration,
  useBackfillSuite,
  wrongRows,
} from './fixtures/backfill-suite.js';

const ROWS = 60_000;
const RUN = { batch: { size: 5000, targetBatchMs: 0 } } as const;

async function sizeOf(knex: Knex, index: string): Promise<number> {
  return Number((await knex.raw('SELECT pg_relation_size(?::regclass)::float8 AS b', [index])).rows[0].b);
}

async function invalidIndexes(knex: Knex, table: string): Promise<string[]> {
  return (
    await knex.raw(
      `SELECT c.relname AS name FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE NOT i.indisvalid AND i.indrelid IN (SELECT ?::regclass UNION SELECT relid FROM pg_partition_tree(?::regclass))`,
      [table, table],
    )
  ).rows.map((r: { name: string }) => r.name);
}

/**
 * A backfill writes a new version of every row; on full pages none stays on its page (HOT), so every index gets a
 * second entry per row and a btree keeps the pages. Once the backfill completes, the indexes that grew are rebuilt
 * online (REINDEX INDEX CONCURRENTLY), each a span of its own.
 */
describe('backfill: indexes rebuilt after the run', function () {
  this.timeout(120_000);
  const s = useBackfillSuite('backfill reindex');

  it('leaves the primary key, an expression index and a partial index about their fresh size', async () => {
    const { ctx } = s;
    await createUsers(ctx.knex, 'users_rx', ROWS);
    await ctx.knex.raw('CREATE INDEX users_rx_upper ON users_rx (upper(email))');
    await ctx.knex.raw('CREATE INDEX users_rx_even ON users_rx (id) WHERE id % 2 = 0');
    await ctx.knex.raw('ANALYZE users_rx');
    const names = ['users_rx_pkey', 'users_rx_upper', 'users_rx_even'];
    const before = await Promise.all(names.map((n) => sizeOf(ctx.knex, n)));
    const r = await resolveFor(ctx.knex, usersMigration('users-rx', 'users_rx'));
    await registerMigration(ctx, r);

    const result = await runBackfill(ctx, r, RUN);

    assert.equal(result.completed, true);
    assert.equal(await wrongRows(ctx.knex, 'users_rx', 'email_lower', 'lower(email)'), 0);
    const after = await Promise.all(names.map((n) => sizeOf(ctx.knex, n)));
    names.forEach((n, i) =>
      assert.ok(after[i]! <= before[i]! * 1.1, `${n}: ${before[i]} bytes before the backfill, ${after[i]} after`),
    );
    const spans = s.spans.byName(REINDEX_SPAN);
    assert.equal(result.reindexes, 3);
    assert.deepEqual(
      spans.map((x) => x.attributes[REINDEX_ATTR.index]).sort(),
      names.map((n) => `${r.schema}.${n}`).sort(),
    );
    const run = s.spans.byName(SPAN.backfill)[0]!;
    for (const x of spans) {
      assert.equal(x.attributes[REINDEX_ATTR.outcome], 'rebuilt');
      assert.ok(
        (x.attributes[REINDEX_ATTR.bytesBefore] as number) > 1.5 * (x.attributes[REINDEX_ATTR.bytesAfter] as number),
      );
      assert.equal(x.parentSpanContext?.spanId, run.spanContext().spanId);
      // The rule's estimate of a fresh build (reindex-catalog.ts) is close to what the rebuild gave.
      const fresh = x.attributes[REINDEX_ATTR.freshBytes] as number;
      const rebuilt = x.attributes[REINDEX_ATTR.bytesAfter] as number;
      assert.ok(
        fresh > 0.8 * rebuilt && fresh < 1.25 * rebuilt,
        `${String(x.attributes[REINDEX_ATTR.index])}: ${fresh} vs ${rebuilt}`,
      );
    }
    // Each REINDEX ran as phaseflag's DDL (lock_timeout, the DDL watch's mark): a phaseflag.ddl span under it.
    const ddl = s.spans
      .byName(SPAN.ddl)
      .filter((x) => String(x.attributes[ATTR.statement] ?? '').startsWith('REINDEX'));
    assert.equal(ddl.length, 3);
    assert.ok(result.reindexMs > 0);

    // Indexes at their fresh size are left alone: another run of the completed backfill rebuilds nothing.
    s.spans.reset();
    const again = await runBackfill(ctx, r, RUN);
    assert.equal(again.completed, true);
    assert.equal(again.reindexes, 0);
    assert.equal(s.spans.byName(REINDEX_SPAN).length, 0);
  });

  it('rebuilds nothing when told not to, nor after a run that stopped; the run that completes it does', async () => {
    const { ctx } = s;
    await createUsers(ctx.knex, 'users_norx', ROWS);
    const before = await sizeOf(ctx.knex, 'users_norx_pkey');
    const r = await resolveFor(ctx.knex, usersMigration('users-norx', 'users_norx'));
    await registerMigration(ctx, r);
    let batches = 0;
    const stopped = await runBackfill(ctx, r, { ...RUN, shouldContinue: () => ++batches <= 6 });
    assert.equal(stopped.completed, false);
    assert.equal(s.spans.byName(REINDEX_SPAN).length, 0);

    await assert.rejects(
      runBackfill(ctx, r, { ...RUN, reindex: false as unknown as { enabled: boolean } }),
      (e: { code?: string }) => e.code === 'PF_INVALID_OPTIONS',
    );
    const skipped = await runBackfill(ctx, r, { ...RUN, reindex: { enabled: false } });
    assert.equal(skipped.completed, true);
    assert.equal(skipped.reindexes, 0);
    assert.equal(s.spans.byName(REINDEX_SPAN).length, 0);
    const bloated = await sizeOf(ctx.knex, 'users_norx_pkey');
    assert.ok(bloated > before * 1.5, `the backfill bloats the primary key: ${before} → ${bloated} bytes`);

    // A run of a completed backfill (a resumed run after a crash between the last batch and the rebuild) rebuilds it.
    const resumed = await runBackfill(ctx, r, RUN);
    assert.equal(resumed.completed, true);
    assert.equal(resumed.rowsScanned, 0);
    assert.equal(resumed.reindexes, 1);
    assert.ok((await sizeOf(ctx.knex, 'users_norx_pkey')) <= before * 1.1);
  });

  it("rebuilds each leaf partition's indexes of a partitioned table, attached and valid", async () => {
    const { ctx } = s;
    await ctx.knex.raw(`
      CREATE TABLE users_part (id bigint NOT NULL, email text NOT NULL, email_lower text, PRIMARY KEY (id))
        PARTITION BY RANGE (id);
      CREATE TABLE users_part_a PARTITION OF users_part FOR VALUES FROM (1) TO (30001);
      CREATE TABLE users_part_b PARTITION OF users_part FOR VALUES FROM (30001) TO (MAXVALUE);
      INSERT INTO users_part (id, email) SELECT g, 'User' || g || '@Example.COM' FROM generate_series(1, ${ROWS}) g;
      ANALYZE users_part;`);
    const before = await sizeOf(ctx.knex, 'users_part_a_pkey');
    const r = await resolveFor(ctx.knex, usersMigration('users-part', 'users_part'));
    await registerMigration(ctx, r);

    const result = await runBackfill(ctx, r, RUN);

    assert.equal(result.completed, true);
    assert.equal(await wrongRows(ctx.knex, 'users_part', 'email_lower', 'lower(email)'), 0);
    assert.deepEqual(
      s.spans
        .byName(REINDEX_SPAN)
        .map((x) => x.attributes[REINDEX_ATTR.index])
        .sort(),
      [`${r.schema}.users_part_a_pkey`, `${r.schema}.users_part_b_pkey`],
    );
    assert.ok((await sizeOf(ctx.knex, 'users_part_a_pkey')) <= before * 1.1);
    assert.deepEqual(await invalidIndexes(ctx.knex, 'users_part'), []);
    const attached = (
      await ctx.knex.raw(`SELECT count(*)::int AS n FROM pg_inherits WHERE inhparent = 'users_part_pkey'::regclass`)
    ).rows[0].n;
    assert.equal(attached, 2, "both partitions' new indexes are attached to the partitioned primary key");
  });

  it('drops an INVALID leftover of a failed REINDEX CONCURRENTLY, then rebuilds the index', async () => {
    const { ctx } = s;
    await createUsers(ctx.knex, 'users_left', ROWS);
    // What a cancelled REINDEX INDEX CONCURRENTLY leaves: an INVALID copy named <index>_ccnew (here a unique
    // build that fails on duplicates).
    await ctx.knex
      .raw('CREATE UNIQUE INDEX CONCURRENTLY users_left_pkey_ccnew ON users_left (touches)')
      .catch(() => {});
    assert.deepEqual(await invalidIndexes(ctx.knex, 'users_left'), ['users_left_pkey_ccnew']);
    const r = await resolveFor(ctx.knex, usersMigration('users-left', 'users_left'));
    await registerMigration(ctx, r);

    const result = await runBackfill(ctx, r, RUN);

    assert.equal(result.completed, true);
    assert.deepEqual(await invalidIndexes(ctx.knex, 'users_left'), []);
    const span = s.spans
      .byName(REINDEX_SPAN)
      .find((x) => x.attributes[REINDEX_ATTR.index] === `${r.schema}.users_left_pkey`)!;
    assert.equal(span.attributes[REINDEX_ATTR.leftoversDropped], 1);
    assert.equal(span.attributes[REINDEX_ATTR.outcome], 'rebuilt');
    // phaseflag's own DDL: the DDL watch records none of it.
    const logged = (
      await ctx.knex.raw('SELECT count(*)::int AS n FROM ??.ddl_log WHERE table_name = ?', [
        ctx.stateSchema,
        'users_left',
      ])
    ).rows[0].n;
    assert.equal(logged, 0);
  });

  it('a rebuild that cannot take its lock is a warning and an ERROR span: the backfill still completes', async () => {
    const { ctx } = s;
    await createUsers(ctx.knex, 'users_busy', 20_000);
    const r = await resolveFor(
      ctx.knex,
      usersMigration('users-busy', 'users_busy', {
        ddl: { lockTimeoutMs: 50, nonBlockingLockTimeoutMs: 50, retryBaseMs: 10 },
      }),
    );
    await registerMigration(ctx, r);
    // Another session's DDL-grade lock on the table (as a long ANALYZE or CREATE INDEX CONCURRENTLY would hold).
    const holder = await ctx.knex.transaction();
    try {
      await holder.raw('LOCK TABLE users_busy IN SHARE UPDATE EXCLUSIVE MODE');
      const result = await runBackfill(ctx, r, RUN);
      assert.equal(result.completed, true);
      assert.equal(result.reindexes, 0);
    } finally {
      await holder.rollback();
    }
    assert.equal(await wrongRows(ctx.knex, 'users_busy', 'email_lower', 'lower(email)'), 0);
    const span = s.spans.byName(REINDEX_SPAN)[0]!;
    assert.equal(span.attributes[REINDEX_ATTR.outcome], 'failed');
    assert.equal(span.status.code, 2); // ERROR
    assert.equal(span.events.filter((e) => e.name === 'lock_timeout').length, 2, 'three attempts');
    assert.ok(
      s.logs.some((l) => l.level === 'warn' && /REINDEX INDEX CONCURRENTLY .*users_busy_pkey failed/.test(l.message)),
    );
    assert.deepEqual(await invalidIndexes(ctx.knex, 'users_busy'), []);
  });

  it('an abort during a rebuild cancels it and drops the copy it was building; the backfill is complete', async () => {
    const { ctx } = s;
    await createUsers(ctx.knex, 'users_cut', 40_000);
    const r = await resolveFor(ctx.knex, usersMigration('users-cut', 'users_cut'));
    await registerMigration(ctx, r);
    // A transaction with an older snapshot: REINDEX CONCURRENTLY builds its copy, then waits for it to end.
    const holder = await ctx.knex.transaction({ isolationLevel: 'repeatable read' });
    const abort = new AbortController();
    try {
      await holder.raw('SELECT 1');
      const running = runBackfill(ctx, r, { ...RUN, signal: abort.signal });
      await waitFor(
        async () =>
          (
            await ctx.knex.raw(
              "SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE 'REINDEX INDEX CONCURRENTLY %users_cut_pkey%' AND wait_event_type = 'Lock'",
            )
          ).rows[0].n > 0,
        { timeoutMs: 60_000, description: 'the REINDEX to wait for the older transaction' },
      );
      assert.deepEqual(await invalidIndexes(ctx.knex, 'users_cut'), ['users_cut_pkey_ccnew']);
      abort.abort();
      const result = await running;
      assert.equal(result.completed, true);
      assert.equal(result.reindexes, 0);
    } finally {
      await holder.rollback();
    }
    assert.deepEqual(await invalidIndexes(ctx.knex, 'users_cut'), [], 'the copy is dropped');
    assert.equal(await wrongRows(ctx.knex, 'users_cut', 'email_lower', 'lower(email)'), 0);
    const span = s.spans.byName(REINDEX_SPAN)[0]!;
    assert.equal(span.attributes[REINDEX_ATTR.outcome], 'aborted');
    assert.equal(span.attributes[REINDEX_ATTR.leftoversDropped], 1);
  });
});
