import assert from 'node:assert/strict';
import {
  CatalogError,
  ConflictError,
  defineMigration,
  isPhaseflagError,
  ValidationError,
  type ErrorCode,
} from '@phaseflag/core';
import type { Suite } from '@phaseflag/testkit';
import { resolveMigration } from '../src/catalog/resolve.js';
import { base, createCatalogSuite, variant, type Patch } from './fixtures/catalog-suite.js';
import { catalogSnapshot, leakedProbeObjects } from './support/catalog-snapshot.js';

describe('catalog: resolveMigration', function () {
  let suite: Suite;

  before(async () => {
    suite = await createCatalogSuite('catalog refusals');
  });
  after(async () => {
    await suite?.cleanup();
  });

  const refusals: [string, ErrorCode, Patch][] = [
    ['a table that does not exist', 'PF_UNKNOWN_TABLE', { table: 'nope' }],
    ['a view instead of a table', 'PF_UNKNOWN_TABLE', { table: 'orders_view' }],
    [
      'a table without a primary key',
      'PF_NO_PRIMARY_KEY',
      { table: 'keyless', oldColumn: 'a', backfill: 'a', reverse: null },
    ],
    [
      "a declared key that is not the table's",
      'PF_NO_PRIMARY_KEY',
      { table: 'pair', primaryKey: ['b', 'a'], oldColumn: 'v', backfill: 'length(v)', reverse: null },
    ],
    ['an old column that does not exist', 'PF_UNKNOWN_COLUMN', { oldColumn: 'amout' }],
    ['an unknown type', 'PF_UNKNOWN_TYPE', { newColumn: { type: 'numerik' } }],
    ['a type with SQL appended', 'PF_UNKNOWN_TYPE', { newColumn: { type: 'int); DROP TABLE orders; --' } }],
    ['a type whose modifier Postgres refuses', 'PF_UNKNOWN_TYPE', { newColumn: { type: 'numeric(2000, 2)' } }],
    ['a new column that exists with another type', 'PF_COLUMN_TYPE_CONFLICT', { table: 'prepared' }],
    ['a syntax error', 'PF_INVALID_EXPRESSION', { backfill: 'amount *' }],
    ['an unknown column in the expression', 'PF_INVALID_EXPRESSION', { backfill: 'amont * 100' }],
    ['a second statement after the expression', 'PF_INVALID_EXPRESSION', { backfill: 'amount; DROP TABLE orders' }],
    [
      'an expression that closes our parenthesis to append SQL',
      'PF_INVALID_EXPRESSION',
      { backfill: 'amount) AS v FROM orders; DROP TABLE orders; SELECT (1' },
    ],
    ['an unbalanced parenthesis', 'PF_INVALID_EXPRESSION', { backfill: 'amount) + (1' }],
    ['a value that does not cast to the type', 'PF_INVALID_EXPRESSION', { backfill: 'row(amount, 1)' }],
    ['an aggregate', 'PF_INVALID_EXPRESSION', { backfill: 'sum(amount)' }],
    ['a system column', 'PF_INVALID_EXPRESSION', { backfill: 'xmin::text::bigint' }],
    ['a set-returning function', 'PF_INVALID_EXPRESSION', { backfill: 'generate_series(1, 2)' }],
    ['a column qualified by the table name', 'PF_INVALID_EXPRESSION', { backfill: 'orders.amount * 100' }],
    [
      'a backfill that reads the column it computes',
      'PF_INVALID_EXPRESSION',
      { backfill: 'coalesce(amount_cents, 0)', newColumn: { name: 'amount_cents' } },
    ],
    ['an invalid reverse expression', 'PF_INVALID_EXPRESSION', { reverse: 'amount_cents / ' }],
    ['a default that is not a value of the type', 'PF_INVALID_EXPRESSION', { newColumn: { default: 'twelve' } }],
    ['a check that is not boolean', 'PF_INVALID_EXPRESSION', { newColumn: { check: 'amount_cents + 1' } }],
    ['random()', 'PF_VOLATILE_EXPRESSION', { backfill: 'round(amount * random())' }],
    ['nextval()', 'PF_VOLATILE_EXPRESSION', { backfill: "nextval('seq')" }],
    [
      'clock_timestamp()',
      'PF_VOLATILE_EXPRESSION',
      {
        newColumn: { name: 'placed_v2', type: 'timestamptz' },
        backfill: 'coalesce(placed_at, clock_timestamp())',
        reverse: null,
        oldColumn: 'placed_at',
      },
    ],
    ['a volatile check', 'PF_VOLATILE_EXPRESSION', { newColumn: { check: 'amount_cents > random()' } }],
    [
      'now(), which depends on the time',
      'PF_VOLATILE_EXPRESSION',
      {
        newColumn: { name: 'age_s', type: 'numeric' },
        backfill: 'extract(epoch from now() - placed_at)',
        reverse: null,
        oldColumn: 'placed_at',
      },
    ],
    [
      'current_timestamp (an SQL value function, not a call)',
      'PF_VOLATILE_EXPRESSION',
      {
        newColumn: { name: 'placed_v2', type: 'timestamptz' },
        backfill: 'coalesce(placed_at, current_timestamp)',
        reverse: null,
        oldColumn: 'placed_at',
      },
    ],
    [
      'current_user, which depends on the session',
      'PF_VOLATILE_EXPRESSION',
      {
        newColumn: { name: 'note_v2', type: 'text' },
        backfill: 'note || current_user',
        reverse: null,
        oldColumn: 'note',
      },
    ],
    ['a user function declared STABLE', 'PF_VOLATILE_EXPRESSION', { backfill: 'stable_cents(amount)' }],
    [
      'a cast from text to timestamptz, which reads TimeZone and DateStyle',
      'PF_VOLATILE_EXPRESSION',
      {
        newColumn: { name: 'placed_v2', type: 'timestamptz' },
        backfill: "('2026-01-01 ' || note)::timestamptz",
        reverse: null,
        oldColumn: 'note',
      },
    ],
    [
      'a cast from timestamptz to text, which reads TimeZone and DateStyle',
      'PF_VOLATILE_EXPRESSION',
      {
        newColumn: { name: 'placed_text', type: 'text' },
        backfill: 'placed_at::text',
        reverse: null,
        oldColumn: 'placed_at',
      },
    ],
    [
      'a cast from text to date, which reads DateStyle',
      'PF_VOLATILE_EXPRESSION',
      { newColumn: { name: 'placed_on', type: 'date' }, backfill: 'note::date', reverse: null, oldColumn: 'note' },
    ],
    [
      'a check that depends on the time',
      'PF_VOLATILE_EXPRESSION',
      { newColumn: { check: "amount_cents > 0 OR now() > '2020-01-01'" } },
    ],
    [
      "a default of 'now' for a timestamp",
      'PF_VOLATILE_EXPRESSION',
      {
        newColumn: { name: 'placed_v2', type: 'timestamptz', default: 'now' },
        backfill: 'placed_at',
        reverse: null,
        oldColumn: 'placed_at',
      },
    ],
    ['a scalar subquery', 'PF_SUBQUERY_EXPRESSION', { backfill: '(SELECT max(amount) FROM orders) * 100' }],
    ['a constant subquery', 'PF_SUBQUERY_EXPRESSION', { backfill: 'amount + (SELECT 1)' }],
    [
      'EXISTS',
      'PF_SUBQUERY_EXPRESSION',
      {
        newColumn: { name: 'flag_v2', type: 'boolean' },
        oldColumn: 'flag',
        backfill: 'EXISTS (SELECT 1 FROM keyless)',
        reverse: null,
      },
    ],
    ['a subquery in the check', 'PF_SUBQUERY_EXPRESSION', { newColumn: { check: 'amount_cents < (SELECT 10)' } }],
    [
      'an index name already used for another index',
      'PF_MIGRATION_CONFLICT',
      { newColumn: { index: { name: 'taken' } } },
    ],
    [
      'a unique index on a partitioned table that cannot include its partition key',
      'PF_INVALID_MIGRATION',
      { table: 'parted', newColumn: { index: { unique: true } } },
    ],
    [
      'a table with only a nullable, a partial and an expression unique key',
      'PF_NO_PRIMARY_KEY',
      { table: 'weakkeys', primaryKey: 'a', oldColumn: 'b', backfill: 'b', reverse: null },
    ],
  ];

  for (const [what, code, patch] of refusals) {
    it(`refuses ${what} with ${code} and changes nothing`, async () => {
      const before = await catalogSnapshot(suite.knex, [suite.schema]);
      const rows = (await suite.knex.raw('SELECT count(*)::int AS n FROM orders')).rows[0].n;
      await assert.rejects(resolveMigration(suite.knex, defineMigration(variant(patch))), (e: unknown) => {
        assert.ok(isPhaseflagError(e, code), `expected ${code}, got ${(e as Error).message}`);
        if (process.env.PF_SHOW_MESSAGES) console.log(`      ${code}: ${e.message}`);
        // A catalog refusal, except a name taken by another object (a conflict) and a declaration the table's
        // kind cannot carry (invalid): each code has one class (core's ERROR_CLASS_BY_CODE).
        const expected =
          code === 'PF_MIGRATION_CONFLICT'
            ? ConflictError
            : code === 'PF_INVALID_MIGRATION'
              ? ValidationError
              : CatalogError;
        assert.ok(e instanceof expected, `expected a ${expected.name}, got a ${(e as Error).name}`);
        assert.equal(e.migrationId, 'amount-cents');
        assert.ok(e.hint.length > 0);
        return true;
      });
      assert.deepEqual(await catalogSnapshot(suite.knex, [suite.schema]), before);
      assert.equal((await suite.knex.raw('SELECT count(*)::int AS n FROM orders')).rows[0].n, rows);
      assert.deepEqual(await leakedProbeObjects(suite.knex), []);
    });
  }

  it('leaves pooled connections usable and free of probe objects after a refusal', async () => {
    // One connection, so the second resolve certainly runs on the session the refused probe used.
    const knex = suite.newKnex({ pool: { min: 1, max: 1 } });
    await assert.rejects(resolveMigration(knex, defineMigration(variant({ backfill: 'amount *' }))));
    const r = await resolveMigration(knex, defineMigration(base));
    assert.equal(r.newColumnType, 'bigint');
    const temp = (await knex.raw('SELECT count(*)::int AS n FROM pg_class WHERE relnamespace = pg_my_temp_schema()'))
      .rows[0].n;
    assert.equal(temp, 0);
    const timeouts = (
      await knex.raw("SELECT current_setting('lock_timeout') AS l, current_setting('search_path') AS p")
    ).rows[0];
    assert.equal(timeouts.l, '0');
    assert.equal(timeouts.p, suite.schema);
  });
});
