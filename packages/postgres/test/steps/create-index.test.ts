import assert from 'node:assert/strict';
import { ATTR, SPAN, isPhaseflagError } from '@phaseflag/core';
import { createIndex } from '../../src/operations/steps/create-index.js';
import { applySteps, expandSteps } from '../../src/operations/steps/phase-steps.js';
import { fastDdl, useStepsSuite } from '../fixtures/steps-suite.js';

describe('the create-index step: CREATE INDEX CONCURRENTLY, rebuilt when left invalid', function () {
  const t = useStepsSuite('step create-index');
  const { spans, resolve, ddlStatements, table, appTraffic } = t;

  it('rebuilds a unique index left INVALID by a failed concurrent build, once the duplicates are fixed', async () => {
    const { ctx } = t;
    await table('dup', 500, ', code int');
    await ctx.knex.raw('UPDATE dup SET code = id % 400'); // 100 duplicated codes
    const r = await resolve({
      id: 'dup',
      table: 'dup',
      oldColumn: 'note',
      backfill: 'length(note)',
      newColumn: { name: 'code', type: 'integer', index: { name: 'dup_code_key', unique: true } },
    });
    await assert.rejects(
      applySteps(ctx, r, expandSteps(r)),
      (e: unknown) => isPhaseflagError(e, 'PF_DDL_FAILED') && /could not create unique index/.test(e.message),
    );
    const invalid = (await ctx.knex.raw("SELECT indisvalid FROM pg_index WHERE indexrelid = 'dup_code_key'::regclass"))
      .rows[0];
    assert.equal(invalid.indisvalid, false, 'a failed CONCURRENTLY build leaves an invalid index behind');

    await ctx.knex.raw('UPDATE dup SET code = id');
    spans.reset();
    await applySteps(
      ctx,
      await resolve({
        id: 'dup',
        table: 'dup',
        oldColumn: 'note',
        backfill: 'length(note)',
        newColumn: { name: 'code', type: 'integer', index: { name: 'dup_code_key', unique: true } },
      }),
      expandSteps(r),
    );
    assert.deepEqual(
      ddlStatements().map((s) => s.split(' ').slice(0, 4).join(' ')),
      ['DROP INDEX CONCURRENTLY IF', 'CREATE UNIQUE INDEX CONCURRENTLY'],
    );
    const valid = (
      await ctx.knex.raw("SELECT indisvalid, indisunique FROM pg_index WHERE indexrelid = 'dup_code_key'::regclass")
    ).rows[0];
    assert.deepEqual(valid, { indisvalid: true, indisunique: true });
  });

  it('builds its index behind a long writer in one attempt (nonBlockingLockTimeoutMs), never stalling application queries', async function () {
    const { ctx, suite } = t;
    await table('slowidx', 5000, ', code int');
    // A writer's transaction that stays open: CREATE INDEX CONCURRENTLY waits for it to end before building.
    const longTx = await suite.newKnex({ pool: { min: 0, max: 1 } }).transaction();
    await longTx.raw('UPDATE slowidx SET note = note WHERE id = 1');
    const { app, load } = appTraffic('slowidx', 2, 5000); // row 1 is the long writer's
    const holdMs = 1500;
    const endLongTx = setTimeout(() => void longTx.commit(), holdMs);
    const r = await resolve({
      id: 'slowidx',
      table: 'slowidx',
      oldColumn: 'amount',
      backfill: 'round(amount)',
      newColumn: { name: 'code', type: 'int', index: true },
      // lock_timeout 200 ms would give up 7 times over; the build's own, longer timeout lets it wait once.
      ddl: { ...fastDdl, nonBlockingLockTimeoutMs: 10_000 },
    });
    try {
      await createIndex.apply(ctx, r);
    } finally {
      clearTimeout(endLongTx);
      await longTx.commit().catch(() => undefined);
    }
    const report = await load.stop();
    await app.destroy();
    const builds = spans
      .byName(SPAN.ddl)
      .filter((x) => /^CREATE INDEX CONCURRENTLY/.test(String(x.attributes[ATTR.statement])));
    assert.equal(builds.length, 1, 'one build');
    assert.equal(Number(builds[0]!.attributes[ATTR.attempts]), 1, 'in one attempt');
    assert.ok(Number(builds[0]!.attributes[ATTR.lockWaitMs]) === 0, 'a session statement reports no LOCK TABLE wait');
    assert.equal(
      (await ctx.knex.raw("SELECT indisvalid FROM pg_index WHERE indexrelid = 'pf_idx_slowidx'::regclass")).rows[0]
        .indisvalid,
      true,
    );
    assert.equal(report.errors, 0, JSON.stringify(report.errorSamples));
    const limit = fastDdl.lockTimeoutMs + 400;
    for (const [op, stats] of Object.entries(report.byOp)) {
      assert.ok(stats.ops > 20, `${op}: only ${stats.ops} ops ran while the index build waited`);
      assert.ok(stats.maxMs < limit, `${op}: an application statement stalled ${stats.maxMs} ms (limit ${limit})`);
    }
  });
});
