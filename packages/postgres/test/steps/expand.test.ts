import assert from 'node:assert/strict';
import { ATTR, SPAN, isPhaseflagError, type MigrationInput } from '@phaseflag/core';
import { addCheck } from '../../src/operations/steps/add-check.js';
import { createIndex } from '../../src/operations/steps/create-index.js';
import { applySteps, expandSteps, rollbackSteps } from '../../src/operations/steps/phase-steps.js';
import { useStepsSuite } from '../fixtures/steps-suite.js';
import { catalogSnapshot } from '../support/catalog-snapshot.js';

describe('expand as a whole (add-column, create-index, add-check) and its rollback', function () {
  const t = useStepsSuite('step expand');
  const { spans, resolve, ddlStatements, table, column } = t;

  it('adds a nullable column with a constant default without rewriting the table, then its index and validated check', async () => {
    const { ctx } = t;
    await table('exp');
    const relfilenode = (await ctx.knex.raw("SELECT relfilenode FROM pg_class WHERE oid = 'exp'::regclass")).rows[0]
      .relfilenode;
    const r = await resolve({
      id: 'exp',
      table: 'exp',
      oldColumn: 'amount',
      backfill: 'round(amount * 100)',
      newColumn: { name: 'amount_cents', type: 'bigint', default: 0, index: true, check: 'amount_cents >= 0' },
    });
    await applySteps(ctx, r, expandSteps(r));

    assert.deepEqual(await column('exp', 'amount_cents'), { type: 'bigint', notNull: false });
    assert.equal(
      (await ctx.knex.raw("SELECT relfilenode FROM pg_class WHERE oid = 'exp'::regclass")).rows[0].relfilenode,
      relfilenode,
    );
    assert.equal((await ctx.knex.raw('SELECT count(*)::int AS n FROM exp WHERE amount_cents = 0')).rows[0].n, 2000);
    const idx = (await ctx.knex.raw("SELECT indisvalid FROM pg_index WHERE indexrelid = 'pf_idx_exp'::regclass"))
      .rows[0];
    assert.equal(idx.indisvalid, true);
    const chk = (await ctx.knex.raw("SELECT convalidated FROM pg_constraint WHERE conname = 'pf_chk_exp'")).rows[0];
    assert.equal(chk.convalidated, true);

    const ddl = spans.byName(SPAN.ddl);
    assert.deepEqual(
      ddl.map((s) => s.attributes[ATTR.lockMode]),
      ['ACCESS EXCLUSIVE', 'SHARE UPDATE EXCLUSIVE', 'ACCESS EXCLUSIVE', 'SHARE UPDATE EXCLUSIVE'],
    );
    assert.match(
      String(ddl[0]!.attributes[ATTR.statement]),
      /ADD COLUMN IF NOT EXISTS "amount_cents" bigint DEFAULT '0'::bigint$/,
    );
    assert.match(String(ddl[1]!.attributes[ATTR.statement]), /^CREATE INDEX CONCURRENTLY IF NOT EXISTS "pf_idx_exp"/);
    assert.match(String(ddl[2]!.attributes[ATTR.statement]), /CHECK \(\namount_cents >= 0\n\) NOT VALID$/);
    assert.match(String(ddl[3]!.attributes[ATTR.statement]), /VALIDATE CONSTRAINT "pf_chk_exp"$/);
    for (const s of ddl) assert.equal(s.attributes[ATTR.migrationId], 'exp');
  });

  it('runs again without executing any DDL or changing anything', async () => {
    const { ctx, suite } = t;
    const r = await resolve({
      id: 'exp',
      table: 'exp',
      oldColumn: 'amount',
      backfill: 'round(amount * 100)',
      newColumn: { name: 'amount_cents', type: 'bigint', default: 0, index: true, check: 'amount_cents >= 0' },
    });
    const before = await catalogSnapshot(ctx.knex, [suite.schema]);
    await applySteps(ctx, r, expandSteps(r));
    assert.deepEqual(ddlStatements(), []);
    assert.deepEqual(await catalogSnapshot(ctx.knex, [suite.schema]), before);
  });

  it('rolls expand back: index, check and the new column go, an index of the same name that is not ours stays', async () => {
    const { ctx, suite } = t;
    await table('rb', 50);
    const input: MigrationInput = {
      id: 'rb',
      table: 'rb',
      oldColumn: 'amount',
      backfill: 'round(amount * 100)',
      newColumn: { name: 'cents', type: 'bigint', index: true, check: 'cents >= 0' },
    };
    const before = await catalogSnapshot(ctx.knex, [suite.schema]);
    let r = await resolve(input);
    await applySteps(ctx, r, expandSteps(r));
    r = await resolve(input);
    await applySteps(ctx, r, rollbackSteps(r, { dropNewColumn: true }));
    const after = (await catalogSnapshot(ctx.knex, [suite.schema])) as { dropped: unknown };
    assert.deepEqual({ ...after, dropped: null }, { ...(before as object), dropped: null });

    await ctx.knex.raw('CREATE INDEX pf_idx_rb ON rb (note)');
    await createIndex.rollback(ctx, r);
    assert.ok((await ctx.knex.raw("SELECT to_regclass('pf_idx_rb') AS r")).rows[0].r);
    await assert.rejects(createIndex.apply(ctx, r), (e: unknown) => isPhaseflagError(e, 'PF_MIGRATION_CONFLICT'));
    await addCheck.rollback(ctx, r); // no such check: nothing to do
  });
});
