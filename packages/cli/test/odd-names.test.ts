import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSuiteSchema, type Suite } from '@phaseflag/testkit';
import { EXIT } from '../src/exit-codes.js';
import { workdir, type Workdir } from './support.js';

/** A config names tables and columns as the catalog has them: any name Postgres accepts quoted. */
describe('phaseflag CLI: names Postgres accepts only quoted', function () {
  this.timeout(120_000);
  let suite: Suite;
  let w: Workdir;
  let schema: string;
  const ident = (name: string) => `"${name.replace(/"/g, '""')}"`;
  const config = (migration: string) => `import { defineConfig } from '@phaseflag/cli';

export default defineConfig({ migrations: [${migration}] });
`;

  before(async () => {
    suite = await createSuiteSchema('cli odd names');
    schema = `Sales Data ${suite.stateSchema.slice(-8)}`;
    await suite.knex.raw(`CREATE SCHEMA ${ident(schema)}`);
    await suite.knex.raw(
      `CREATE TABLE ${ident(schema)}."order-lines" ("Line ID" bigint PRIMARY KEY, "Bestellwert €" integer NOT NULL, "we""ird" text)`,
    );
    await suite.knex.raw(
      `INSERT INTO ${ident(schema)}."order-lines" SELECT g, g * 7, 'x' FROM generate_series(1, 200) AS g`,
    );
    w = workdir(suite);
  });
  after(async () => {
    w?.remove();
    await suite?.knex.raw(`DROP SCHEMA IF EXISTS ${ident(schema)} CASCADE`).catch(() => undefined);
    await suite?.cleanup();
  });

  it('plans, expands and reports a migration on "Sales Data"."order-lines" from the config', async () => {
    w.writeConfig(
      config(`{
    id: 'odd-amount',
    table: ${JSON.stringify(`${ident(schema)}."order-lines"`)},
    primaryKey: 'Line ID',
    oldColumn: 'Bestellwert €',
    newColumn: { name: '金额.select', type: 'numeric(12,2)', index: { name: 'idx "金额"' } },
    backfill: '"Bestellwert €"::numeric / 100',
    reverse: '("金额.select" * 100)::integer',
  }`),
    );
    const plan = await w.run(['plan', 'odd-amount', '--json']);
    assert.equal(plan.code, EXIT.ok, plan.stderr);
    const sql = plan
      .json()
      .phases[0].statements.map((s: { sql: string }) => s.sql)
      .join('\n');
    assert.ok(sql.includes(`ALTER TABLE ${ident(schema)}."order-lines" ADD COLUMN IF NOT EXISTS "金额.select"`), sql);
    const expand = await w.run(['expand', 'odd-amount', '--json']);
    assert.equal(expand.code, EXIT.ok, expand.stderr);
    const status = await w.run(['status', 'odd-amount', '--json']);
    assert.equal(status.code, EXIT.ok, status.stderr);
    const col = await suite.knex.raw(
      `SELECT count(*)::int AS n FROM information_schema.columns WHERE table_schema = ? AND table_name = 'order-lines' AND column_name = '金额.select'`,
      [schema],
    );
    assert.equal(col.rows[0].n, 1);
  });

  for (const [what, name, value, shown] of [
    ['a NUL', 'a\\u0000b', 'a\u0000b', 'NUL'],
    ['an empty name', '', '', 'empty'],
    ['64 bytes', 'é'.repeat(32), 'é'.repeat(32), '64 bytes'],
  ] as const) {
    it(`refuses ${what} in the config, with the value and a hint (exit 2)`, async () => {
      w.writeConfig(
        config(
          `{ id: 'bad-name', table: 'orders', oldColumn: 'amount_cents', newColumn: { name: '${name}', type: 'text' } }`,
        ),
      );
      const r = await w.run(['plan', 'bad-name', '--json']);
      assert.equal(r.code, EXIT.usage, r.stderr);
      const error = r.json().error;
      assert.equal(error.code, 'PF_CONFIG_INVALID', 'the CLI names the config; the message names the field');
      assert.equal(error.value, value);
      assert.ok(error.message.includes('Invalid new column') && error.message.includes(shown), error.message);
      assert.match(error.hint, /63 bytes/);
    });
  }

  it('init writes names with quotes, dots and Unicode that plan reads back exactly', async () => {
    const fresh = workdir(suite);
    try {
      const table = `${ident(schema)}."we.ird lines"`;
      await suite.knex.raw(`CREATE TABLE ${table} (id bigint PRIMARY KEY, "we""ird" text)`);
      const r = await fresh.run([
        'init',
        '--id',
        'odd-init',
        '--table',
        table,
        '--old-column',
        'we"ird',
        '--new-column',
        "it's \\ new.v2",
        '--type',
        'text',
        '--backfill',
        `upper(${ident('we"ird')})`,
      ]);
      assert.equal(r.code, EXIT.ok, r.stderr);
      const source = readFileSync(join(fresh.dir, 'migrations', 'odd-init.ts'), 'utf8');
      assert.ok(source.includes(`table: '"Sales Data`), source);
      const plan = await fresh.run(['plan', 'odd-init', '--json']);
      assert.equal(plan.code, EXIT.ok, plan.stderr);
      const json = plan.json();
      assert.deepEqual(json.table, { schema, name: 'we.ird lines' });
      assert.equal(json.newColumn.name, "it's \\ new.v2");
    } finally {
      fresh.remove();
    }
  });
});
