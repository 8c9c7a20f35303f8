import assert from 'node:assert/strict';
import { isPhaseflagError, type MigrationInput } from '@phaseflag/core';
import { applySteps, expandSteps } from '../../src/operations/steps/phase-steps.js';
import { useStepsSuite } from '../fixtures/steps-suite.js';

describe('the add-check step: a CHECK added NOT VALID, then validated', function () {
  const t = useStepsSuite('step add-check');
  const { spans, resolve, ddlStatements, table } = t;

  it('validates a check that a failed run left NOT VALID, once the offending rows are fixed', async () => {
    const { ctx } = t;
    await table('chk', 300, ', score int');
    await ctx.knex.raw('UPDATE chk SET score = id - 10'); // ten negative scores
    const input: MigrationInput = {
      id: 'chk',
      table: 'chk',
      oldColumn: 'note',
      backfill: 'length(note)',
      newColumn: { name: 'score', type: 'int', check: 'score >= 0' },
    };
    await assert.rejects(applySteps(ctx, await resolve(input), expandSteps(await resolve(input))), (e: unknown) =>
      isPhaseflagError(e, 'PF_DDL_FAILED'),
    );
    assert.equal(
      (await ctx.knex.raw("SELECT convalidated FROM pg_constraint WHERE conname = 'pf_chk_chk'")).rows[0].convalidated,
      false,
    );
    await ctx.knex.raw('UPDATE chk SET score = abs(score)');
    spans.reset();
    const r = await resolve(input);
    await applySteps(ctx, r, expandSteps(r));
    assert.deepEqual(
      ddlStatements().map((s) => s.replace(/^.* (VALIDATE|ADD) .*$/s, '$1')),
      ['VALIDATE'],
    );
    assert.equal(
      (await ctx.knex.raw("SELECT convalidated FROM pg_constraint WHERE conname = 'pf_chk_chk'")).rows[0].convalidated,
      true,
    );
  });
});
