import assert from 'node:assert/strict';
import { isPhaseflagError } from '@phaseflag/core';
import { dropNewColumn, dropOldColumn } from '../../src/operations/steps/drop-column.js';
import { applySteps, expandSteps } from '../../src/operations/steps/phase-steps.js';
import { syncTrigger, syncTriggerInstalled } from '../../src/operations/steps/sync-trigger.js';
import { useStepsSuite } from '../fixtures/steps-suite.js';

describe('the drop-column steps: the new column on rollback, the old one at contract', function () {
  const t = useStepsSuite('step drop-column');
  const { resolve, table, column } = t;

  it('drops a column the sync trigger names only after removing the trigger, so writes keep working', async () => {
    const { ctx } = t;
    await table('dropper', 10);
    const r = await resolve({
      id: 'dropper',
      table: 'dropper',
      oldColumn: 'amount',
      backfill: 'round(amount * 100)',
      newColumn: { name: 'cents', type: 'bigint' },
    });
    await applySteps(ctx, r, expandSteps(r));
    await syncTrigger.apply(ctx, r);
    assert.equal(await syncTriggerInstalled(ctx, r), true);
    await dropNewColumn.apply(ctx, r);
    assert.equal(await column('dropper', 'cents'), undefined);
    assert.equal(await syncTriggerInstalled(ctx, r), false);
    await ctx.knex.raw("INSERT INTO dropper (id, amount, note) VALUES (1000, 1, 'after')");
    await dropNewColumn.apply(ctx, r); // nothing left to do
    await assert.rejects(dropOldColumn.rollback(ctx, r), (e: unknown) => isPhaseflagError(e, 'PF_IRREVERSIBLE'));
  });
});
