import assert from 'node:assert/strict';
import { dropNotNull } from '../../src/operations/steps/drop-not-null.js';
import { useStepsSuite } from '../fixtures/steps-suite.js';

describe('the drop-not-null step', function () {
  const t = useStepsSuite('step drop-not-null');
  const { spans, resolve, ddlStatements, table, column } = t;

  it('drops NOT NULL on the old column only when it has it', async () => {
    const { ctx } = t;
    await table('old_nn', 10);
    const r = await resolve({
      id: 'old-nn',
      table: 'old_nn',
      oldColumn: 'amount',
      backfill: 'amount',
      newColumn: { name: 'amount_v2', type: 'numeric(12,2)' },
    });
    await dropNotNull.apply(ctx, r);
    assert.equal((await column('old_nn', 'amount'))!.notNull, false);
    spans.reset();
    await dropNotNull.apply(ctx, r);
    assert.deepEqual(ddlStatements(), []);
  });
});
