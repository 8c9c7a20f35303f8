import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defineMigration, type MigrationInput } from '@phaseflag/core';
import { Phaseflag } from '@phaseflag/postgres';
import { LATEST_SCHEMA_VERSION } from '@phaseflag/postgres/internal';
import { createSuiteSchema, type Suite } from '@phaseflag/testkit';
import pg from 'pg';
import { EXIT } from '../src/exit-codes.js';
import { configOf, createTable, expandObjects, recorded } from './generate-support.js';
import { workdir, type Workdir } from './support.js';

/** One migration per way of running the files, each on its own table. */
const TABLES = { 'watch-gm': 'orders_wg', 'watch-psql': 'orders_wp', 'watch-knex': 'orders_wk' } as const;
type Id = keyof typeof TABLES;

function psqlPath(): string | null {
  try {
    return execFileSync('sh', ['-c', 'command -v psql'], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

/**
 * The DDL watch (event triggers, installed as a superuser with the watch on, as in ddl-watch.test.ts) records DDL on
 * a migration's table that phaseflag did not run. The files `phaseflag generate` writes run phaseflag's DDL through
 * the team's own tool: they mark it as phaseflag's own, and the mark ends with them.
 */
describe("generated migration files and the DDL watch: their DDL is phaseflag's own, and the mark ends with them", function () {
  this.timeout(300_000);
  let suite: Suite;
  let w: Workdir;
  let pf: Phaseflag;
  let client: pg.Client;

  before(async () => {
    suite = await createSuiteSchema('generate ddl watch');
    w = workdir(suite, { PHASEFLAG_WATCH_DDL: 'on' });
    w.writeConfig(configOf(suite.schema, TABLES));
    writeFileSync(join(w.dir, 'package.json'), '{ "name": "app", "private": true }\n');
    for (const table of Object.values(TABLES)) await createTable(suite, table, 500);
    pf = new Phaseflag({ knex: suite.knex, stateSchema: suite.stateSchema, watchDdl: true });
    await pf.install();
    assert.deepEqual((await pf.drift([])).watch, { active: true, reason: null }, 'the watch is on');
    client = new pg.Client({ connectionString: suite.databaseUrl, application_name: 'golang-migrate (test)' });
    await client.connect();
  });
  after(async () => {
    await client?.end();
    await pf?.close();
    w?.remove();
    await suite?.cleanup();
  });

  const migrationOf = (id: Id) =>
    defineMigration({
      id,
      table: `${suite.schema}.${TABLES[id]}`,
      oldColumn: 'amount_cents',
      newColumn: { name: 'amount', type: 'numeric(12,2)', nullable: false, index: true, check: 'amount >= 0' },
      backfill: 'amount_cents::numeric / 100',
      reverse: '(amount * 100)::integer',
      batch: { size: 200, targetBatchMs: 0, pauseMs: 0 },
    } satisfies MigrationInput);
  const generate = async (id: Id, args: string[]) => {
    const r = await w.run(['generate', id, ...args, '--json']);
    assert.equal(r.code, EXIT.ok, r.stderr);
    return r.json<{ files: { path: string; direction: string }[] }>().files;
  };
  const logged = async (id: Id) =>
    (
      await suite.knex.raw(
        'SELECT command_tag FROM ??.ddl_log WHERE table_name = ? AND acknowledged_at IS NULL ORDER BY id',
        [suite.stateSchema, TABLES[id]],
      )
    ).rows.map((r: { command_tag: string }) => r.command_tag) as string[];
  /** The migration expanded by the files; drift finds nothing and the watch recorded none of their DDL. */
  const expandedAndQuiet = async (id: Id) => {
    assert.equal((await recorded(suite, id)).phase, 'expanded');
    assert.deepEqual(await expandObjects(suite, TABLES[id]), { column: true, indexValid: true, checkValidated: true });
    assert.deepEqual(await logged(id), [], 'ddl_log holds nothing of the files');
    const report = await pf.drift([migrationOf(id)]);
    assert.deepEqual(report.migrations[0]!.findings, []);
    assert.deepEqual(report.migrations[0]!.recordedDdl, []);
    assert.equal(report.drifted, false);
  };
  /** A hand-made ALTER TABLE after the files is recorded, and `drift` reports it. */
  const handMadeIsRecorded = async (id: Id, run: (sql: string) => Promise<unknown>) => {
    await run(`ALTER TABLE "${suite.schema}"."${TABLES[id]}" ADD COLUMN note text`);
    assert.deepEqual(await logged(id), ['ALTER TABLE']);
    const report = await pf.drift([migrationOf(id)]);
    assert.deepEqual(
      report.migrations[0]!.recordedDdl.map((d) => d.commandTag),
      ['ALTER TABLE'],
    );
    assert.equal(report.drifted, true);
  };
  const markOn = async (c: pg.Client) =>
    (await c.query("SELECT current_setting('phaseflag.ddl', true) AS v")).rows[0].v as string | null;

  it('golang-migrate (each file one query, one connection): drift stays quiet; the mark is off after the ups and the downs; a hand-made ALTER is recorded', async () => {
    const files = await generate('watch-gm', ['--format', 'sql', '--out', 'gm']);
    const names = readdirSync(join(w.dir, 'gm'));
    const run = async (suffix: string, order: 1 | -1) => {
      const list = names.filter((n) => n.endsWith(suffix)).sort();
      for (const name of order === 1 ? list : list.reverse())
        await client.query(readFileSync(join(w.dir, 'gm', name), 'utf8'));
    };
    assert.equal(files.length, 6);
    const body = (suffix: string) =>
      readFileSync(
        join(
          w.dir,
          'gm',
          names.find((n) => n.endsWith(suffix))!,
        ),
        'utf8',
      )
        .split('\n')
        .filter((l) => l && !l.startsWith('--'));
    // Transactional files: the mark is transaction-local, first; the store must be at the version the files were
    // generated for (the DDL watch came with 6).
    assert.equal(body('_expand.up.sql')[0], "SET LOCAL phaseflag.ddl = 'on';");
    assert.match(body('_expand.up.sql').join('\n'), new RegExp(`IF v <> ${LATEST_SCHEMA_VERSION} THEN`));
    assert.ok(LATEST_SCHEMA_VERSION >= 6);
    assert.equal(body('_expand.up.sql').at(-1), "SET phaseflag.ddl = 'on';", 'the session mark for the index file');
    assert.deepEqual(body('_expand_record.up.sql').slice(0, 2), [
      'RESET phaseflag.ddl;',
      "SET LOCAL phaseflag.ddl = 'on';",
    ]);
    // golang-migrate sends a file as one query: CONCURRENTLY stands alone there.
    assert.equal(body('_expand_index.up.sql').length, 1);
    await run('.up.sql', 1);
    await expandedAndQuiet('watch-gm');
    assert.notEqual(await markOn(client), 'on', 'the mark did not stay on the connection');
    await handMadeIsRecorded('watch-gm', (sql) => client.query(sql));
    assert.equal(await pf.acknowledgeDdl([migrationOf('watch-gm')]), 1);
    await client.query(`ALTER TABLE "${suite.schema}"."orders_wg" DROP COLUMN note`);
    await pf.acknowledgeDdl([migrationOf('watch-gm')]);

    await run('.down.sql', -1);
    assert.equal((await recorded(suite, 'watch-gm')).phase, 'rolled-back');
    assert.notEqual(await markOn(client), 'on', 'the downs leave no mark either');
    await run('.up.sql', 1); // expand again, from rolled-back
    await expandedAndQuiet('watch-gm');
    assert.notEqual(await markOn(client), 'on');
  });

  it('Flyway names run statement by statement without a transaction (psql -f, as sqitch does): drift stays quiet; a hand-made ALTER in the same session is recorded', async function () {
    const psql = psqlPath();
    if (!psql) this.skip();
    await generate('watch-psql', ['--format', 'sql', '--naming', 'flyway', '--out', 'fw']);
    const ups = readdirSync(join(w.dir, 'fw'))
      .filter((n) => /^V.*\.sql$/.test(n))
      .sort();
    assert.equal(ups.length, 3);
    const index = readFileSync(join(w.dir, 'fw', ups[1]!), 'utf8');
    assert.match(index, /^SET phaseflag\.ddl = 'on';\nCREATE INDEX CONCURRENTLY .*;\nRESET phaseflag\.ddl;\n$/m);
    const psqlRun = (args: string[]) =>
      execFileSync(psql, ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', suite.databaseUrl, ...args], {
        encoding: 'utf8',
        stdio: 'pipe',
      });
    const files = ups.flatMap((f) => ['-f', join(w.dir, 'fw', f)]);
    psqlRun(files);
    await expandedAndQuiet('watch-psql');
    // One session: the files again (nothing to do), then a hand-made ALTER (psql runs -f and -c in order).
    await handMadeIsRecorded('watch-psql', async (sql) => psqlRun([...files, '-c', sql]));
  });

  it('knex files run the engine, which marks its own DDL: drift stays quiet; a hand-made ALTER after them is recorded', async () => {
    await generate('watch-knex', ['--format', 'knex', '--only', 'expand', '--out', 'k']);
    await suite.knex.migrate.latest({ directory: join(w.dir, 'k'), tableName: 'knex_migrations_watch' });
    await expandedAndQuiet('watch-knex');
    await handMadeIsRecorded('watch-knex', (sql) => suite.knex.raw(sql));
  });
});
