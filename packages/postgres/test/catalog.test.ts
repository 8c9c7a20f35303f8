import assert from 'node:assert/strict';
import {
  CatalogError,
  ConflictError,
  defineMigration,
  isPhaseflagError,
  ValidationError,
  type ErrorCode,
  type MigrationInput,
} from '@phaseflag/core';
import { createSuiteSchema, type Suite } from '@phaseflag/testkit';
import { resolveMigration } from '../src/catalog/resolve.js';
import { expressionShapeProblem } from '../src/sql/text.js';
import { catalogSnapshot, leakedProbeObjects } from './support/catalog-snapshot.js';

const base: MigrationInput = {
  id: 'amount-cents',
  table: 'orders',
  oldColumn: 'amount',
  newColumn: { name: 'amount_cents', type: 'bigint' },
  backfill: 'round(amount * 100)',
  reverse: 'amount_cents / 100.0',
};

type Patch = Omit<Partial<MigrationInput>, 'newColumn'> & { newColumn?: Partial<MigrationInput['newColumn']> };

function variant(patch: Patch): MigrationInput {
  return { ...base, ...patch, newColumn: { ...base.newColumn, ...patch.newColumn } };
}

describe('catalog: resolveMigration', function () {
  let suite: Suite;

  before(async () => {
    suite = await createSuiteSchema('catalog');
    await suite.knex.raw(`
      CREATE TABLE orders (id bigint PRIMARY KEY, amount numeric NOT NULL, note text, placed_at timestamptz, flag boolean);
      INSERT INTO orders (id, amount, note) SELECT g, g * 1.25, 'n' || g FROM generate_series(1, 200) AS g;
      CREATE TABLE keyless (a int, b int);
      CREATE TABLE pair (a int, b int, v text, PRIMARY KEY (a, b));
      CREATE VIEW orders_view AS SELECT * FROM orders;
      CREATE TYPE mood AS ENUM ('ok', 'sad');
      CREATE SEQUENCE seq;
      CREATE TABLE prepared (id int PRIMARY KEY, amount numeric, amount_cents text);
      CREATE INDEX taken ON orders (note);
      CREATE TABLE parted (id bigint PRIMARY KEY, amount numeric NOT NULL) PARTITION BY RANGE (id);
      CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (1000);
      CREATE FUNCTION stable_cents(numeric) RETURNS bigint LANGUAGE sql STABLE AS 'SELECT round($1 * 100)::bigint';
      CREATE FUNCTION fixed_cents(numeric) RETURNS bigint LANGUAGE sql IMMUTABLE AS 'SELECT round($1 * 100)::bigint';
      CREATE FUNCTION iso_date(text) RETURNS date LANGUAGE sql IMMUTABLE SET datestyle = 'ISO, YMD' AS 'SELECT $1::date';
      ANALYZE orders;
    `);
  });
  after(async () => {
    await suite?.cleanup();
  });

  it("normalizes the type, renders the default with Postgres and reports each expression's input columns by name", async () => {
    const r = await resolveMigration(
      suite.knex,
      defineMigration(
        variant({
          newColumn: { name: 'amount_v2', type: 'NUMERIC(12, 2)', default: 0 },
          backfill: 'amount',
          reverse: 'amount_v2 * 1',
        }),
      ),
    );
    assert.equal(r.schema, suite.schema);
    assert.equal(r.newColumnType, 'numeric(12,2)');
    assert.equal(r.newColumnExists, false);
    assert.equal(r.newColumnDefaultSql, "'0.00'::numeric(12,2)");
    assert.deepEqual(r.backfillInputs, ['amount']);
    // The reverse names the new column, which does not exist yet: it is analysed over a copy of the row that has it.
    assert.deepEqual(r.reverseInputs, ['amount_v2']);
    assert.deepEqual(
      r.primaryKey.map((c) => c.name),
      ['id'],
    );
    assert.equal(r.oldColumn?.type, 'numeric');
    assert.equal(r.oldColumn?.notNull, true);
    assert.deepEqual(r.searchPath, [suite.schema]);
    assert.deepEqual(r.expressionDependencies, [], 'built-ins only');
    assert.ok(r.rowsEstimate >= 100, `estimate ${r.rowsEstimate}`);
  });

  it('estimates the rows of a table never analyzed (reltuples -1) from the planner, without counting them', async () => {
    await suite.knex.raw(`
      CREATE TABLE fresh (id bigint PRIMARY KEY, amount numeric NOT NULL);
      INSERT INTO fresh SELECT g, g FROM generate_series(1, 20000) AS g;
      CREATE TABLE fresh_parted (id bigint PRIMARY KEY, amount numeric NOT NULL) PARTITION BY RANGE (id);
      CREATE TABLE fresh_parted_1 PARTITION OF fresh_parted FOR VALUES FROM (0) TO (100000);
      INSERT INTO fresh_parted SELECT g, g FROM generate_series(1, 20000) AS g;
    `);
    for (const table of ['fresh', 'fresh_parted']) {
      const r = await resolveMigration(suite.knex, defineMigration(variant({ table })));
      // The planner's guess is the relation's size over an estimated tuple width: the right order of magnitude.
      assert.ok(r.rowsEstimate > 5_000 && r.rowsEstimate < 80_000, `${table}: estimate ${r.rowsEstimate}`);
    }
  });

  it('spells a type outside pg_catalog with its schema, so it means the same type under any search_path', async () => {
    const r = await resolveMigration(
      suite.knex,
      defineMigration(
        variant({
          oldColumn: 'note',
          newColumn: { name: 'mood', type: 'mood' },
          backfill: "CASE WHEN note LIKE 'n1%' THEN 'sad' ELSE 'ok' END",
          reverse: null,
        }),
      ),
    );
    assert.equal(r.newColumnType, `${suite.schema}.mood`);
    assert.deepEqual(r.backfillInputs, ['note']);
    assert.deepEqual(r.expressionDependencies, [`type ${suite.schema}.mood`]);
  });

  it('accepts semicolons, parentheses and dashes inside string constants and comments of an expression', async () => {
    const r = await resolveMigration(
      suite.knex,
      defineMigration(
        variant({
          oldColumn: 'note',
          newColumn: { name: 'note_v2', type: 'text' },
          backfill: "note || ';)' || $x$ -- ( $x$ -- trailing comment (\n",
          reverse: null,
        }),
      ),
    );
    assert.deepEqual(r.backfillInputs, ['note']);
  });

  it('accepts expressions that depend on the row alone: immutable functions, a fixed time zone, casts between numbers and text', async () => {
    for (const [backfill, type, oldColumn] of [
      ['fixed_cents(amount)', 'bigint', 'amount'],
      ["(placed_at AT TIME ZONE 'UTC')::date", 'date', 'placed_at'],
      ["placed_at > '2026-01-01 00:00+00'::timestamptz", 'boolean', 'placed_at'],
      ['amount::text', 'text', 'amount'],
      ['iso_date(note)', 'date', 'note'],
    ] as const) {
      const r = await resolveMigration(
        suite.knex,
        defineMigration(variant({ oldColumn, newColumn: { name: 'derived_v2', type }, backfill, reverse: null })),
      );
      assert.deepEqual(r.backfillInputs, [oldColumn], backfill);
    }
  });

  it('accepts a column that already exists with the declared type (spelled differently)', async () => {
    const r = await resolveMigration(
      suite.knex,
      defineMigration(
        variant({
          table: 'prepared',
          newColumn: { name: 'amount_cents', type: 'TEXT' },
          backfill: 'amount::text',
          reverse: 'amount_cents::numeric',
        }),
      ),
    );
    assert.equal(r.newColumnExists, true);
    assert.deepEqual(r.reverseInputs, ['amount_cents']);
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
      'an index on a partitioned table (no CONCURRENTLY there)',
      'PF_INVALID_MIGRATION',
      { table: 'parted', newColumn: { index: true } },
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

describe('sql-text: expressionShapeProblem', () => {
  it('finds statements and unbalanced parentheses only outside literals, identifiers and comments', () => {
    for (const ok of [
      "a || ';'",
      'a || ")"',
      "E'\\';' || b",
      '$$;$$ || $t$)$t$',
      'a -- ;)\n',
      '/* ; /* nested ) */ */ a',
      'f(x, (y))',
      'a$b + 1',
    ]) {
      assert.equal(expressionShapeProblem(ok), null, ok);
    }
    for (const bad of ['a; b', 'a)', '(a', "'open", '"open', '$$open', '/* open', '', "a ~ 'x\\?'"]) {
      assert.notEqual(expressionShapeProblem(bad), null, bad);
    }
  });
});
