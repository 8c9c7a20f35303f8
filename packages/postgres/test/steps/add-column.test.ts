import assert from 'node:assert/strict';
import { ATTR, LockTimeoutError, SPAN, defineMigration } from '@phaseflag/core';
import { resolveMigration } from '../../src/catalog/resolve.js';
import { applySteps, expandSteps } from '../../src/operations/steps/phase-steps.js';
import { fastDdl, useStepsSuite } from '../fixtures/steps-suite.js';

describe('the add-column step: ALTER TABLE … ADD COLUMN, waiting behind long transactions', function () {
  const t = useStepsSuite('step add-column');
  const { spans, resolve, table, column, appTraffic } = t;

  it('waits behind a long-running transaction without stalling application queries, retrying until it ends', async function () {
    const { ctx, suite } = t;
    await table('busy', 5000);
    const r = await resolve({
      id: 'busy',
      table: 'busy',
      oldColumn: 'amount',
      backfill: 'round(amount * 100)',
      newColumn: { name: 'amount_cents', type: 'bigint' },
    });
    // The long transaction: a report that read the table and is still open (ACCESS SHARE until it ends).
    const longTx = await suite.newKnex({ pool: { min: 0, max: 1 } }).transaction();
    await longTx.raw('SELECT sum(amount) FROM busy');
    const { load } = appTraffic('busy', 1, 5000);
    const holdMs = 1500;
    const endLongTx = setTimeout(() => void longTx.commit(), holdMs);
    const started = Date.now();
    try {
      await applySteps(ctx, r, expandSteps(r));
    } finally {
      clearTimeout(endLongTx);
      await longTx.commit().catch(() => undefined);
    }
    const tookMs = Date.now() - started;
    const report = await load.stop();

    assert.ok(tookMs >= holdMs - 100, `expand finished after ${tookMs} ms, before the long transaction ended`);
    assert.ok(await column('busy', 'amount_cents'));
    const [span] = spans.byName(SPAN.ddl);
    const attempts = Number(span!.attributes[ATTR.attempts]);
    assert.ok(attempts > 1, `attempts ${attempts}`);
    assert.equal(report.errors, 0, JSON.stringify(report.errorSamples));
    const limit = fastDdl.lockTimeoutMs + 400;
    for (const [op, stats] of Object.entries(report.byOp)) {
      assert.ok(stats.ops > 20, `${op}: only ${stats.ops} ops ran while expand waited`);
      assert.ok(stats.maxMs < limit, `${op}: an application statement stalled ${stats.maxMs} ms (limit ${limit})`);
    }
    console.log(
      `      (expand waited ${tookMs} ms in ${attempts} attempts; app ops ${report.ops}, max ${Math.max(...Object.values(report.byOp).map((s) => s.maxMs)).toFixed(0)} ms)`,
    );
  });

  it('fails with PF_LOCK_TIMEOUT after maxAttempts behind a transaction that does not end, leaving the table unchanged', async () => {
    const { ctx, suite } = t;
    await table('stuck', 100);
    const r = await resolveMigration(
      ctx.knex,
      defineMigration({
        id: 'stuck',
        table: 'stuck',
        oldColumn: 'amount',
        backfill: 'round(amount)',
        newColumn: { name: 'amount_int', type: 'bigint' },
        ddl: { ...fastDdl, lockTimeoutMs: 50, maxAttempts: 3, retryBaseMs: 10, retryMaxMs: 20 },
      }),
    );
    const longTx = await suite.newKnex({ pool: { min: 0, max: 1 } }).transaction();
    await longTx.raw('SELECT count(*) FROM stuck');
    try {
      await assert.rejects(
        applySteps(ctx, r, expandSteps(r)),
        (e: unknown) => e instanceof LockTimeoutError && e.attempts === 3,
      );
    } finally {
      await longTx.commit();
    }
    assert.equal(await column('stuck', 'amount_int'), undefined);
  });
});
