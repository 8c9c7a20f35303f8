import assert from 'node:assert/strict';
import { defineMigration } from '@phaseflag/core';
import type { Suite } from '@phaseflag/testkit';
import { resolveMigration } from '../src/catalog/resolve.js';
import { createCatalogSuite, variant } from './fixtures/catalog-suite.js';

describe('catalog: resolveMigration', function () {
  let suite: Suite;

  before(async () => {
    suite = await createCatalogSuite('catalog');
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
});
