import assert from 'node:assert/strict';
import type { LintCatalog } from '../src/index.js';
import { only } from './support.js';

const MB = 1024 * 1024;
/** A large orders table (a finding is not dropped for its size) with these CHECK constraints. */
const withChecks = (checks: NonNullable<LintCatalog['tables'][number]['checks']>): LintCatalog => ({
  serverVersionNum: 150020,
  tables: [{ schema: 'public', name: 'orders', rowsEstimate: 4_000_000, totalBytes: 800 * MB, checks }],
});

/** The safe way's steps 2 and 3, the NOT VALID check having been added by an earlier migration. */
const STEPS_2_AND_3 = [
  'ALTER TABLE orders VALIDATE CONSTRAINT orders_note_not_null;',
  'ALTER TABLE orders ALTER COLUMN note SET NOT NULL;',
].join('\n');

describe('SET NOT NULL after a check an earlier migration added', () => {
  it('VALIDATE CONSTRAINT earlier in the file, then SET NOT NULL: no finding from PostgreSQL 12, one on 11', async () => {
    assert.deepEqual(await only(STEPS_2_AND_3, { pgVersion: 12 }), []);
    assert.deepEqual(await only(STEPS_2_AND_3, { pgVersion: 11 }), ['adding-not-nullable-field']);
  });

  it('in one transaction too (a knex migration): the check is validated before SET NOT NULL runs', async () => {
    assert.deepEqual(await only(STEPS_2_AND_3, { assumeInTransaction: true }), []);
    assert.deepEqual(await only(`BEGIN;\n${STEPS_2_AND_3}\nCOMMIT;`), []);
  });

  it('a VALIDATE on another table, or after the SET NOT NULL, proves nothing', async () => {
    assert.deepEqual(await only(STEPS_2_AND_3.replace('TABLE orders VALIDATE', 'TABLE invoices VALIDATE')), [
      'adding-not-nullable-field',
    ]);
    const reversed = STEPS_2_AND_3.split('\n').reverse().join('\n');
    assert.deepEqual(await only(reversed), ['adding-not-nullable-field']);
  });

  it("a foreign key this file added, validated, proves nothing about a column's nulls", async () => {
    const sql = [
      'ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;',
      'ALTER TABLE orders VALIDATE CONSTRAINT fk;',
      'ALTER TABLE orders ALTER COLUMN note SET NOT NULL;',
    ].join('\n');
    assert.deepEqual(await only(sql), ['adding-not-nullable-field']);
  });
});

describe('SET NOT NULL with the catalog', () => {
  const setNotNull = 'ALTER TABLE orders ALTER COLUMN note SET NOT NULL;';

  it('a validated CHECK (note IS NOT NULL) the catalog shows makes SET NOT NULL safe (PostgreSQL 12+)', async () => {
    const catalog = withChecks([{ name: 'orders_note_not_null', validated: true, notNullColumn: 'note' }]);
    assert.deepEqual(await only(setNotNull, { catalog }), []);
    const pg11 = { ...catalog, serverVersionNum: 110022 };
    assert.deepEqual(await only(setNotNull, { catalog: pg11 }), ['adding-not-nullable-field']);
  });

  it('a check still NOT VALID, or one on another column, or another kind of check, does not', async () => {
    for (const check of [
      { name: 'orders_note_not_null', validated: false, notNullColumn: 'note' },
      { name: 'orders_other_not_null', validated: true, notNullColumn: 'other' },
      { name: 'orders_note_short', validated: true },
    ])
      assert.deepEqual(
        await only(setNotNull, { catalog: withChecks([check]) }),
        ['adding-not-nullable-field'],
        check.name,
      );
  });

  it('VALIDATE CONSTRAINT of a check the catalog lists: only the column that check proves is proven', async () => {
    const proves = (notNullColumn?: string) =>
      withChecks([{ name: 'orders_note_not_null', validated: false, ...(notNullColumn ? { notNullColumn } : {}) }]);
    assert.deepEqual(await only(STEPS_2_AND_3, { catalog: proves('note') }), []);
    assert.deepEqual(await only(STEPS_2_AND_3, { catalog: proves('other') }), ['adding-not-nullable-field']);
    assert.deepEqual(await only(STEPS_2_AND_3, { catalog: proves(undefined) }), ['adding-not-nullable-field']);
    // a constraint the catalog does not list yet (added by a migration still pending): as without a catalog
    assert.deepEqual(await only(STEPS_2_AND_3, { catalog: withChecks([]) }), []);
  });
});
