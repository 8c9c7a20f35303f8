import assert from 'node:assert/strict';
import { defineMigration, type MigrationInput } from '@phaseflag/core';
import type { Suite } from '@phaseflag/testkit';
import type { Knex } from 'knex';
import { resolveMigration } from '../../src/catalog/resolve.js';
import type { ExecutorContext } from '../../src/context.js';
import { applySteps, expandSteps } from '../../src/operations/steps/phase-steps.js';
import { syncTrigger } from '../../src/operations/steps/sync-trigger.js';
import { setupSyncSuite, type SyncSuite } from '../fixtures/sync-suite.js';

/** A value the expressions cannot map never fails the writer's statement: the row is recorded instead. */
describe('sync trigger', function () {
  let suite: Suite;
  let ctx: ExecutorContext;
  let writer: Knex;
  let row: SyncSuite['row'];

  before(async () => {
    ({ suite, ctx, writer, row } = await setupSyncSuite('sync underivable'));
  });
  after(async () => {
    await suite?.cleanup();
  });

  it("never fails a writer's statement on a value the expressions cannot map: the row is recorded instead", async () => {
    await ctx.knex.raw(
      "CREATE TABLE qty_orders (id bigint PRIMARY KEY, qty text, note text); INSERT INTO qty_orders SELECT g, g::text, 'n' FROM generate_series(1, 20) g; UPDATE qty_orders SET qty = 'N/A' WHERE id = 7",
    );
    const input: MigrationInput = {
      id: 'qty',
      table: 'qty_orders',
      oldColumn: 'qty',
      newColumn: { name: 'qty_int', type: 'integer' },
      backfill: 'qty::int',
      reverse: 'qty_int::text',
    };
    let r = await resolveMigration(ctx.knex, defineMigration(input));
    await applySteps(ctx, r, expandSteps(r));
    r = await resolveMigration(ctx.knex, defineMigration(input));
    await syncTrigger.apply(ctx, r);
    const recorded = async () =>
      (
        await ctx.knex.raw(
          'SELECT key, old_value, error, sqlstate, source FROM ??.underivable WHERE migration_id = ? ORDER BY key',
          [suite.stateSchema, 'qty'],
        )
      ).rows;

    // The planted row, not backfilled yet: an unrelated column, and its old value rewritten unchanged. Neither calls
    // the trigger's function (its WHEN clause is false): the row is the backfill's to derive, and record.
    await writer.raw("UPDATE qty_orders SET note = 'touched' WHERE id = 7");
    await writer.raw('UPDATE qty_orders SET qty = qty WHERE id = 7');
    await writer.raw("UPDATE qty_orders SET qty = 'lots' WHERE id = 3");
    await writer.raw("INSERT INTO qty_orders (id, qty) VALUES (100, 'x')");
    assert.deepEqual(
      (await writer.raw('SELECT id, qty, qty_int FROM qty_orders WHERE id IN (3, 7, 100) ORDER BY id')).rows,
      [
        { id: '3', qty: 'lots', qty_int: null },
        { id: '7', qty: 'N/A', qty_int: null },
        { id: '100', qty: 'x', qty_int: null },
      ],
    );
    assert.deepEqual(await recorded(), [
      {
        key: [3],
        old_value: 'lots',
        error: 'invalid input syntax for type integer: "lots"',
        sqlstate: '22P02',
        source: 'trigger',
      },
      {
        key: [100],
        old_value: 'x',
        error: 'invalid input syntax for type integer: "x"',
        sqlstate: '22P02',
        source: 'trigger',
      },
    ]);
    // A value that derives again: the new column follows (its record is cleared by the next verify).
    await writer.raw("UPDATE qty_orders SET qty = '12' WHERE id = 3");
    assert.equal((await row('qty_orders', 3)).qty_int, 12);
    // A writer of the new column only, on a row whose old value does not derive: the reverse fills the old one.
    await writer.raw('UPDATE qty_orders SET qty_int = 70 WHERE id = 7');
    assert.deepEqual([(await row('qty_orders', 7)).qty, (await row('qty_orders', 7)).qty_int], ['70', 70]);

    // An application role with rights on its table only (no USAGE on the state schema): recording fails, the write does not.
    const role = `pf_app_${suite.schema.slice(-8)}`;
    await ctx.knex.raw('CREATE ROLE ?? NOLOGIN', [role]);
    try {
      await ctx.knex.raw('GRANT USAGE ON SCHEMA ?? TO ??', [suite.schema, role]);
      await ctx.knex.raw('GRANT SELECT, INSERT, UPDATE ON ??.qty_orders TO ??', [suite.schema, role]);
      await writer.transaction(async (trx) => {
        await trx.raw('SET LOCAL ROLE ??', [role]);
        await trx.raw("UPDATE qty_orders SET qty = 'many' WHERE id = 4");
      });
      assert.deepEqual([(await row('qty_orders', 4)).qty, (await row('qty_orders', 4)).qty_int], ['many', null]);
    } finally {
      await ctx.knex.raw('DROP OWNED BY ??', [role]);
      await ctx.knex.raw('DROP ROLE ??', [role]);
    }
  });

  it('leaves the old column as written when the reverse cannot map a new value, and records the row', async () => {
    await ctx.knex.raw(
      "CREATE TABLE lvl_orders (id bigint PRIMARY KEY, level text NOT NULL); INSERT INTO lvl_orders SELECT g, 'low' FROM generate_series(1, 5) g",
    );
    const input: MigrationInput = {
      id: 'lvl',
      table: 'lvl_orders',
      oldColumn: 'level',
      newColumn: { name: 'level_n', type: 'smallint' },
      backfill: "CASE level WHEN 'low' THEN 1 WHEN 'high' THEN 2 ELSE level::int END",
      reverse: "CASE level_n WHEN 1 THEN 'low' WHEN 2 THEN 'high' ELSE ('unmapped ' || level_n::text)::int::text END",
    };
    let r = await resolveMigration(ctx.knex, defineMigration(input));
    await applySteps(ctx, r, expandSteps(r));
    r = await resolveMigration(ctx.knex, defineMigration(input));
    await syncTrigger.apply(ctx, r);
    await writer.raw("UPDATE lvl_orders SET level = 'medium' WHERE id = 1");
    await writer.raw('UPDATE lvl_orders SET level_n = 9 WHERE id = 2');
    assert.deepEqual(
      (await writer.raw('SELECT id, level, level_n FROM lvl_orders WHERE id IN (1, 2) ORDER BY id')).rows,
      [
        { id: '1', level: 'medium', level_n: null },
        { id: '2', level: 'low', level_n: 9 },
      ],
    );
    const rows = (
      await ctx.knex.raw('SELECT key, old_value, error FROM ??.underivable WHERE migration_id = ? ORDER BY key', [
        suite.stateSchema,
        'lvl',
      ])
    ).rows;
    assert.deepEqual(
      rows.map((x: { key: unknown }) => x.key),
      [[1], [2]],
    );
    assert.match(rows[1].error, /^reverse of 9: invalid input syntax for type integer: "unmapped 9"/);
  });
});
