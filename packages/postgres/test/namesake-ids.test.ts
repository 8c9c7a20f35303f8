import assert from 'node:assert/strict';
import { isPhaseflagError, type MigrationInput } from '@phaseflag/core';
import { createSuiteSchema, type Suite } from '@phaseflag/testkit';
import { Phaseflag } from '../src/phaseflag.js';

/**
 * Object names keep letters, digits and _ of the id only: ids that differ in -, . and _ alone would share the
 * sync function, trigger and helper constraints, and one migration's rollback would drop the other's trigger.
 */
describe('migration ids that derive the same object names', function () {
  this.timeout(60_000);
  let suite: Suite;
  let pf: Phaseflag;

  const input = (id: string, newColumn: string): MigrationInput => ({
    id,
    table: 'items',
    oldColumn: 'qty_text',
    newColumn: { name: newColumn, type: 'integer' },
    backfill: 'qty_text::integer',
    reverse: `${newColumn}::text`,
  });

  before(async () => {
    suite = await createSuiteSchema('namesake_ids');
    await suite.knex.raw(`CREATE TABLE items (id bigint PRIMARY KEY, qty_text text NOT NULL);
      CREATE TABLE others (id bigint PRIMARY KEY, qty_text text NOT NULL)`);
    pf = new Phaseflag({ knex: suite.knex, stateSchema: suite.stateSchema });
    await pf.install();
  });
  after(async () => {
    await pf?.close();
    await suite?.cleanup();
  });

  it('refuses a new id whose names a recorded migration derives, recording nothing, until that one is rolled back', async () => {
    const first = pf.migration(input('items-qty', 'qty'));
    await first.expand();
    await first.startDualWrite();
    for (const id of ['items_qty', 'items.qty', 'ITEMS-QTY']) {
      const second = pf.migration({ ...input(id, 'qty2'), table: 'others' });
      await assert.rejects(second.expand(), (e: unknown) => {
        assert.ok(isPhaseflagError(e, 'PF_MIGRATION_CONFLICT'), String(e));
        assert.equal(e.value, id);
        assert.match(e.message, /"items-qty"/);
        return true;
      });
    }
    const ids = await suite.knex(`${suite.stateSchema}.migrations`).pluck('id');
    assert.deepEqual(ids, ['items-qty']);
    const cols = await suite.knex.raw(
      `SELECT count(*)::int AS n FROM information_schema.columns WHERE table_name = 'others' AND column_name = 'qty2' AND table_schema = ?`,
      [suite.schema],
    );
    assert.equal(cols.rows[0].n, 0);
    // Another id is fine; once the first is rolled back its names are free again.
    await pf.migration({ ...input('other-qty', 'qty3'), table: 'others' }).register();
    await first.rollback({ dropNewColumn: true });
    await pf.migration({ ...input('items_qty', 'qty2'), table: 'others' }).register();
  });
});
