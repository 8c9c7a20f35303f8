import assert from 'node:assert/strict';
import { defineMigration, isPhaseflagError, type MigrationInput } from '@phaseflag/core';
import type { Phaseflag } from '@phaseflag/postgres';
import { internalsOf } from '@phaseflag/postgres/internal';
import { createSuiteSchema, type Suite } from '@phaseflag/testkit';
import { createOrders, engine } from './support/orders.js';

const base: MigrationInput = {
  id: 'bad',
  table: 'orders',
  oldColumn: 'amount_cents',
  newColumn: { name: 'amount', type: 'numeric(12,2)' },
  backfill: 'amount_cents::numeric / 100',
};

describe('bad input changes nothing', function () {
  let suite: Suite;
  let pf: Phaseflag;
  let before_: string;

  const catalog = async () =>
    JSON.stringify(
      (
        await suite.knex.raw(
          `SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS t, a.attnotnull FROM pg_attribute a
      WHERE a.attrelid = 'orders'::regclass AND a.attnum > 0 ORDER BY a.attnum`,
        )
      ).rows,
    ) +
    JSON.stringify(
      (
        await suite.knex.raw(
          "SELECT indexrelid::regclass::text AS i FROM pg_index WHERE indrelid = 'orders'::regclass ORDER BY 1",
        )
      ).rows,
    ) +
    JSON.stringify(
      (await suite.knex.raw("SELECT tgname FROM pg_trigger WHERE tgrelid = 'orders'::regclass ORDER BY 1")).rows,
    );

  before(async () => {
    suite = await createSuiteSchema('badinput');
    await createOrders(suite.knex, 1000);
    await suite.knex.raw('CREATE TABLE nopk (a int, b int)');
    pf = engine(suite);
    await pf.install();
    before_ = await catalog();
  });

  after(async () => {
    await pf?.close();
    await suite?.cleanup();
  });

  const cases: Array<[string, Partial<MigrationInput>, string]> = [
    ['an unknown table', { table: 'no_such_table' }, 'PF_UNKNOWN_TABLE'],
    ['a table without a primary key', { table: 'nopk', oldColumn: 'a', backfill: 'a::numeric' }, 'PF_NO_PRIMARY_KEY'],
    ["a declared key that is not the table's", { primaryKey: 'customer_id' }, 'PF_NO_PRIMARY_KEY'],
    ['an unknown old column', { oldColumn: 'nope' }, 'PF_UNKNOWN_COLUMN'],
    ['an unknown type', { newColumn: { name: 'amount', type: 'moneybags' } }, 'PF_UNKNOWN_TYPE'],
    [
      'a new column that exists with another type',
      { newColumn: { name: 'note', type: 'integer' }, backfill: 'amount_cents' },
      'PF_COLUMN_TYPE_CONFLICT',
    ],
    ['an expression Postgres rejects', { backfill: 'amount_cents +* 2' }, 'PF_INVALID_EXPRESSION'],
    ['an expression over an unknown column', { backfill: 'price / 100' }, 'PF_INVALID_EXPRESSION'],
    ['a volatile expression', { backfill: 'random() * amount_cents' }, 'PF_VOLATILE_EXPRESSION'],
    [
      'an expression with a subquery',
      { backfill: '(SELECT max(amount_cents) FROM orders)::numeric' },
      'PF_SUBQUERY_EXPRESSION',
    ],
  ];

  for (const [what, overrides, code] of cases) {
    it(`refuses ${what} with ${code} and executes no DDL`, async () => {
      const m = pf.migration(
        defineMigration({
          ...base,
          id: `bad-${code.toLowerCase().replace(/_/g, '-')}-${Math.random().toString(36).slice(2, 6)}`,
          ...overrides,
        }),
      );
      for (const attempt of [() => m.plan(), () => m.expand()]) {
        await assert.rejects(attempt(), (e: unknown) => {
          assert.ok(isPhaseflagError(e), String(e));
          assert.equal(e.code, code, e.message);
          assert.ok(e.hint.length > 10);
          return true;
        });
      }
      assert.equal(await catalog(), before_, 'the table is exactly as it was');
      assert.equal(await internalsOf(pf).store.get(m.id), null, 'nothing was recorded as started');
    });
  }

  it('refuses identifiers that are not plain names before touching the database', () => {
    assert.throws(
      () => defineMigration({ ...base, table: 'orders"; DROP TABLE orders; --' }),
      (e: unknown) => isPhaseflagError(e, 'PF_INVALID_IDENTIFIER'),
    );
  });

  it('refuses to read new before verify, records the refusal and keeps the phase', async () => {
    const m = pf.migration(
      defineMigration({ ...base, id: 'too-early', newColumn: { name: 'amount_x', type: 'numeric(12,2)' } }),
    );
    await m.expand();
    await assert.rejects(m.readNew(), (e: unknown) => isPhaseflagError(e, 'PF_GUARD_REFUSED'));
    const s = await m.status();
    assert.equal(s.phase, 'expanded');
    assert.equal(s.events.at(-1)?.kind, 'refused');
    await assert.rejects(m.contract({ confirm: false }), (e: unknown) => isPhaseflagError(e, 'PF_GUARD_REFUSED'));
    await m.rollback();
  });
});
