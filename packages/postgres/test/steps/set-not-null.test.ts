import assert from 'node:assert/strict';
import { ATTR, SPAN, isPhaseflagError } from '@phaseflag/core';
import { createContext } from '../../src/context.js';
import { setNotNull } from '../../src/operations/steps/set-not-null.js';
import { useStepsSuite } from '../fixtures/steps-suite.js';

describe('the set-not-null step: SET NOT NULL through a validated CHECK', function () {
  const t = useStepsSuite('step set-not-null');
  const { spans, resolve, ddlStatements, table, column } = t;

  it('sets NOT NULL through a validated CHECK, so SET NOT NULL itself does not scan, and drops the helper', async () => {
    const { ctx, suite } = t;
    await table('nn', 1000, ', cents bigint');
    await ctx.knex.raw('UPDATE nn SET cents = id * 150');
    const r = await resolve({
      id: 'nn',
      table: 'nn',
      oldColumn: 'amount',
      backfill: 'round(amount * 100)',
      newColumn: { name: 'cents', type: 'bigint', nullable: false },
    });
    // Postgres reports at DEBUG1 when existing constraints prove a column has no NULLs and the scan is skipped.
    const notices: string[] = [];
    const watched = suite.newKnex({
      pool: {
        min: 0,
        max: 2,
        afterCreate: (
          conn: {
            on: (e: string, f: (n: { message: string }) => void) => void;
            query: (s: string, cb: (e: Error | null) => void) => void;
          },
          done: (e: Error | null, c: unknown) => void,
        ) => {
          conn.on('notice', (n) => notices.push(n.message));
          conn.query('SET client_min_messages = debug1', (e) => done(e, conn));
        },
      },
    });
    const wctx = createContext({ knex: watched, stateSchema: suite.stateSchema });
    await setNotNull.apply(wctx, r);

    assert.deepEqual(await column('nn', 'cents'), { type: 'bigint', notNull: true });
    assert.ok(
      notices.some((n) =>
        /existing constraints on column "nn.cents" are sufficient to prove that it does not contain nulls/.test(n),
      ),
      `no proof notice among: ${notices.join(' | ')}`,
    );
    assert.equal(
      (await ctx.knex.raw("SELECT count(*)::int AS n FROM pg_constraint WHERE conname = 'pf_nn_nn'")).rows[0].n,
      0,
    );
    const ddl = spans.byName(SPAN.ddl).map((s) => [
      s.attributes[ATTR.lockMode],
      String(s.attributes[ATTR.statement])
        .split('\n')[0]!
        .replace(/^ALTER TABLE \S+ /, ''),
    ]);
    assert.deepEqual(ddl, [
      ['ACCESS EXCLUSIVE', 'ADD CONSTRAINT "pf_nn_nn" CHECK ("cents" IS NOT NULL) NOT VALID'],
      ['SHARE UPDATE EXCLUSIVE', 'VALIDATE CONSTRAINT "pf_nn_nn"'],
      ['ACCESS EXCLUSIVE', 'ALTER COLUMN "cents" SET NOT NULL;'],
    ]);

    spans.reset();
    await setNotNull.apply(ctx, r);
    assert.deepEqual(ddlStatements(), [], 'a second run does nothing');
    await setNotNull.rollback(ctx, r);
    assert.deepEqual(await column('nn', 'cents'), { type: 'bigint', notNull: false });
  });

  it('stops at VALIDATE while rows are NULL and resumes from there once they are filled', async () => {
    const { ctx } = t;
    await table('nn2', 200, ', cents bigint');
    await ctx.knex.raw('UPDATE nn2 SET cents = id WHERE id > 5');
    const r = await resolve({
      id: 'nn2',
      table: 'nn2',
      oldColumn: 'amount',
      backfill: 'round(amount * 100)',
      newColumn: { name: 'cents', type: 'bigint', nullable: false },
    });
    await assert.rejects(
      setNotNull.apply(ctx, r),
      (e: unknown) => isPhaseflagError(e, 'PF_DDL_FAILED') && /violated by some row/.test(e.message),
    );
    assert.equal((await column('nn2', 'cents'))!.notNull, false);
    await ctx.knex.raw('UPDATE nn2 SET cents = 0 WHERE cents IS NULL');
    spans.reset();
    await setNotNull.apply(ctx, r);
    assert.equal(ddlStatements().length, 2, 'the helper check is reused: VALIDATE, then SET NOT NULL');
    assert.equal((await column('nn2', 'cents'))!.notNull, true);
  });
});
