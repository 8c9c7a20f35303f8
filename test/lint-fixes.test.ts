import assert from 'node:assert/strict';
import { defineMigration, type Migration } from '@phaseflag/core';
import { lintSql } from '@phaseflag/lint';
import { describeTables, Phaseflag } from '@phaseflag/postgres';
import { createSuiteSchema, type Suite } from '@phaseflag/testkit';

/**
 * The fix a finding prints is a `defineMigration({...})` ready to paste: here each one is evaluated as written,
 * passes defineMigration, and plans (`handle.plan()`) against the real table the unsafe statement was about.
 */
describe('lint fixes: each printed defineMigration evaluates, validates and plans on the real table', function () {
  this.timeout(120_000);
  let suite: Suite;
  let pf: Phaseflag;

  before(async () => {
    suite = await createSuiteSchema('lint_fixes');
    await suite.knex.raw(
      `CREATE TABLE orders (id bigint PRIMARY KEY, amount integer NOT NULL, note varchar(20), email text)`,
    );
    await suite.knex.raw(
      `INSERT INTO orders SELECT g, g * 100, 'n' || g, 'User' || g || '@Example.com' FROM generate_series(1, 50) g`,
    );
    await suite.knex.raw('ANALYZE orders');
    pf = new Phaseflag({ knex: suite.knex, stateSchema: suite.stateSchema });
  });

  after(async () => {
    await suite?.cleanup();
  });

  it('describeTables gives the table its rows, size, columns and the server version', async () => {
    const catalog = await describeTables(suite.knex, ['orders']);
    const table = catalog.tables.find((t) => t.schema === suite.schema && t.name === 'orders')!;
    assert.equal(table.rowsEstimate, 50);
    assert.ok(table.totalBytes > 8192);
    assert.deepEqual(
      table.columns.map((c) => [c.name, c.type, c.notNull]),
      [
        ['id', 'bigint', true],
        ['amount', 'integer', true],
        ['note', 'character varying(20)', false],
        ['email', 'text', false],
      ],
    );
    assert.ok(catalog.serverVersionNum >= 110000);
  });

  it('describeTables lists CHECK constraints, validated or not, and lint clears SET NOT NULL on the column one proves', async () => {
    const t = `${suite.schema}.checked`;
    await suite.knex.raw(`CREATE TABLE ${t} (id bigint PRIMARY KEY, "Note" text, n integer)`);
    await suite.knex.raw(`ALTER TABLE ${t} ADD CONSTRAINT note_nn CHECK ("Note" IS NOT NULL) NOT VALID`);
    await suite.knex.raw(
      `ALTER TABLE ${t} ADD CONSTRAINT n_nn CHECK (n IS NOT NULL), ADD CONSTRAINT n_pos CHECK (n > 0)`,
    );
    const catalog = await describeTables(suite.knex, ['checked']);
    assert.deepEqual(catalog.tables.find((x) => x.schema === suite.schema)!.checks, [
      { name: 'n_nn', definition: 'CHECK ((n IS NOT NULL))', validated: true, notNullColumn: 'n' },
      { name: 'n_pos', definition: 'CHECK ((n > 0))', validated: true },
      {
        name: 'note_nn',
        definition: 'CHECK (("Note" IS NOT NULL)) NOT VALID',
        validated: false,
        notNullColumn: 'Note',
      },
    ]);
    // an empty table is small: a threshold of zero keeps the size-dependent findings
    const lint = async (sql: string) =>
      (
        await lintSql(`SET lock_timeout = '2s';\n${sql}`, { catalog, smallTable: { maxRows: 0, maxBytes: 0 } })
      ).findings.map((f) => f.rule);
    assert.deepEqual(await lint(`ALTER TABLE ${t} ALTER COLUMN n SET NOT NULL;`), []);
    assert.deepEqual(await lint(`ALTER TABLE ${t} ALTER COLUMN "Note" SET NOT NULL;`), ['adding-not-nullable-field']);
    assert.deepEqual(
      await lint(`ALTER TABLE ${t} VALIDATE CONSTRAINT note_nn;\nALTER TABLE ${t} ALTER COLUMN "Note" SET NOT NULL;`),
      [],
    );
    assert.deepEqual(
      await lint(`ALTER TABLE ${t} VALIDATE CONSTRAINT n_pos;\nALTER TABLE ${t} ALTER COLUMN "Note" SET NOT NULL;`),
      ['adding-not-nullable-field'],
    );
  });

  it('type change, type change with USING, SET NOT NULL, rename and a generated column each get a fix that plans', async () => {
    const t = `${suite.schema}.orders`;
    const sql = [
      `SET lock_timeout = '2s';`,
      `ALTER TABLE ${t} ALTER COLUMN amount TYPE bigint;`,
      `ALTER TABLE ${t} ALTER COLUMN amount TYPE numeric(12,2) USING amount::numeric / 100;`,
      `ALTER TABLE ${t} ALTER COLUMN note SET NOT NULL;`,
      `ALTER TABLE ${t} RENAME COLUMN email TO mail;`,
      `ALTER TABLE ${t} ADD COLUMN email_lower text GENERATED ALWAYS AS (lower(email)) STORED;`,
    ].join('\n');
    // A 50-row table is small: force the findings with a threshold of zero, as a config's lint.smallTable can.
    const catalog = await describeTables(suite.knex);
    const result = await lintSql(sql, { catalog, smallTable: { maxRows: 0, maxBytes: 0 } });
    const fixes = result.findings.filter((f) => f.fix !== undefined);
    assert.deepEqual(
      fixes.map((f) => f.rule),
      [
        'changing-column-type',
        'changing-column-type',
        'adding-not-nullable-field',
        'renaming-column',
        'adding-field-with-default',
      ],
    );
    for (const f of fixes) {
      // The fix as a user pastes it: evaluated as written, with defineMigration in scope.
      // eslint-disable-next-line @typescript-eslint/no-implied-eval -- evaluating the printed code is the point
      const migration = new Function('defineMigration', `return ${f.fix!}`)(defineMigration) as Migration;
      assert.ok(Object.isFrozen(migration), f.fix);
      const plan = await pf.migration(migration).plan();
      assert.ok(
        plan.phases.some((p) => p.statements.length > 0),
        f.fix,
      );
      assert.equal(plan.table.schema, suite.schema);
    }
    const [type, using, notNull, rename, derive] = fixes.map((f) => f.fix!);
    assert.match(type!, /reverse: 'amount_new::int'/);
    assert.match(using!, /backfill: 'amount::numeric \/ 100'/);
    assert.match(notNull!, /newColumn: \{ name: 'note_not_null', type: 'varchar\(20\)', nullable: false \}/);
    assert.match(rename!, /oldColumn: 'email',\n {2}newColumn: \{ name: 'mail', type: 'text', nullable: true \}/);
    assert.match(derive!, /intent: 'derive'/);
    // The large-table form of the same message states the size the catalog gave.
    assert.ok(fixes.every((f) => /holds ~50 rows in \d+ kB/.test(f.message) || f.rule === 'renaming-column'));
  });
});
