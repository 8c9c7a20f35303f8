import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defineMigration, type MigrationInput } from '@phaseflag/core';
import { Phaseflag } from '@phaseflag/postgres';
import { LATEST_SCHEMA_VERSION } from '@phaseflag/postgres/internal';
import { createSuiteSchema, startUnleash, waitFor, type Suite, type UnleashServer } from '@phaseflag/testkit';
import pg from 'pg';
import { EXIT } from '../src/exit-codes.js';
import { configOf, createTable, expandObjects, flagsOn, recorded, runController } from './generate-support.js';
import { workdir, wrongRows, type Workdir } from './support.js';

const ID = 'orders-sql';

/** psql, when the machine has it (the files are also run as golang-migrate does, which needs nothing). */
function psqlPath(): string | null {
  try {
    return execFileSync('sh', ['-c', 'command -v psql'], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

describe('phaseflag generate --format sql: SQL files for Flyway, golang-migrate, sqitch', function () {
  this.timeout(300_000);
  let suite: Suite;
  let unleash: UnleashServer;
  let w: Workdir;
  let client: pg.Client;
  let files: string[];

  before(async () => {
    suite = await createSuiteSchema('generate sql');
    unleash = await startUnleash();
    w = workdir(suite, {
      UNLEASH_URL: unleash.url,
      UNLEASH_API_TOKEN: unleash.clientToken,
      UNLEASH_ADMIN_TOKEN: unleash.adminToken,
    });
    w.writeConfig(configOf(suite.schema, { [ID]: 'orders_s', 'orders-part': 'orders_p' }));
    await createTable(suite, 'orders_s', 3000);
    await suite.knex.raw(
      'CREATE TABLE orders_p (id bigint PRIMARY KEY, amount_cents integer NOT NULL) PARTITION BY RANGE (id); CREATE TABLE orders_p1 PARTITION OF orders_p FOR VALUES FROM (0) TO (1000000)',
    );
    client = new pg.Client({ connectionString: suite.databaseUrl, application_name: 'golang-migrate (test)' });
    await client.connect();
  });
  after(async () => {
    await client?.end();
    w?.remove();
    await unleash?.stop();
    await suite?.cleanup();
  });

  /** The migration as the config declares it (for an engine in the test process). */
  const migrationOf = (id: string) =>
    defineMigration({
      id,
      table: `${suite.schema}.orders_s`,
      oldColumn: 'amount_cents',
      newColumn: { name: 'amount', type: 'numeric(12,2)', nullable: false, index: true, check: 'amount >= 0' },
      backfill: 'amount_cents::numeric / 100',
      reverse: '(amount * 100)::integer',
      batch: { size: 200, targetBatchMs: 0, pauseMs: 0 },
    } satisfies MigrationInput);
  /** As golang-migrate's postgres driver runs a file: its whole text in one simple-protocol query. */
  const runAll = async (names: readonly string[]) => {
    for (const name of names) await client.query(readFileSync(join(w.dir, 'sql', name), 'utf8'));
  };
  const ups = () => files.filter((f) => f.endsWith('.up.sql')).sort();
  const downs = () =>
    files
      .filter((f) => f.endsWith('.down.sql'))
      .sort()
      .reverse();

  it('a store that is missing, or at another version, is refused with what to do; nothing changes', async () => {
    const r = await w.run(['generate', ID, '--format', 'sql', '--out', 'nostore', '--json'], {
      env: { PHASEFLAG_STATE_SCHEMA: 'pf_state_none' },
    });
    assert.equal(r.code, EXIT.ok, r.stderr);
    const first = readdirSync(join(w.dir, 'nostore')).sort()[1]!;
    assert.match(first, /_orders-sql_expand\.up\.sql$/);
    await assert.rejects(client.query(readFileSync(join(w.dir, 'nostore', first), 'utf8')), (e: pg.DatabaseError) => {
      assert.equal(e.message, 'phaseflag: no state store in schema "pf_state_none"');
      assert.match(e.hint ?? '', /npx phaseflag install/);
      return true;
    });

    const install = await w.run(['install']);
    assert.equal(install.code, EXIT.ok, install.stderr);
    const gen = await w.run(['generate', ID, '--format', 'sql', '--out', 'sql', '--json']);
    assert.equal(gen.code, EXIT.ok, gen.stderr);
    files = readdirSync(join(w.dir, 'sql'));
    await client.query('BEGIN');
    try {
      await client.query(`INSERT INTO "${suite.stateSchema}".schema_version (version) VALUES ($1)`, [
        LATEST_SCHEMA_VERSION + 1,
      ]);
      await assert.rejects(client.query(readFileSync(join(w.dir, 'sql', ups()[0]!), 'utf8')), (e: pg.DatabaseError) => {
        assert.match(
          e.message,
          new RegExp(
            `is at version ${LATEST_SCHEMA_VERSION + 1}; this file was generated for version ${LATEST_SCHEMA_VERSION}$`,
          ),
        );
        assert.match(e.hint ?? '', /Generate the files again/);
        return true;
      });
    } finally {
      await client.query('ROLLBACK');
    }
    assert.equal((await recorded(suite, ID)).phase, undefined, 'nothing was registered');
    assert.deepEqual(await expandObjects(suite, 'orders_s'), { column: false, indexValid: null, checkValidated: null });
  });

  it("the files hold the plan's own statements, CONCURRENTLY alone in its file, lock_timeout around the rest", async () => {
    assert.deepEqual(files.map((f) => f.replace(/^\d{14}_/, '')).sort(), [
      'orders-sql_expand.down.sql',
      'orders-sql_expand.up.sql',
      'orders-sql_expand_index.down.sql',
      'orders-sql_expand_index.up.sql',
      'orders-sql_expand_record.down.sql',
      'orders-sql_expand_record.up.sql',
    ]);
    const plan = (await w.run(['plan', ID, '--json'])).json();
    const expand = plan.phases.find((p: { phase: string }) => p.phase === 'expand').statements as {
      sql: string;
      step: string;
    }[];
    const text = ups()
      .map((f) => readFileSync(join(w.dir, 'sql', f), 'utf8'))
      .join('\n');
    for (const s of expand.filter((x) => !x.sql.startsWith('DROP INDEX')))
      assert.ok(text.includes(s.sql), `the plan's ${s.step} statement is in the files:\n${s.sql}`);
    const index = readFileSync(join(w.dir, 'sql', ups()[1]!), 'utf8');
    assert.deepEqual(
      index.split('\n').filter((l) => l && !l.startsWith('--')),
      [`${expand.find((s) => s.sql.startsWith('CREATE INDEX CONCURRENTLY'))!.sql};`],
    );
    assert.match(readFileSync(join(w.dir, 'sql', ups()[0]!), 'utf8'), /^SET lock_timeout = '400ms';$/m);
  });

  it('run in order (as golang-migrate does) they expand and record it; run again they change nothing; the downs roll back', async () => {
    // A service's router learns of the files' transition as of the controller's: by NOTIFY (polling set to a minute).
    const pf = new Phaseflag({ knex: suite.knex, stateSchema: suite.stateSchema, pollIntervalMs: 60_000 });
    const heard: string[] = [];
    const unwatch = pf.migration(migrationOf(ID)).watch((snapshot) => heard.push(snapshot.phase));
    await new Promise((r) => setTimeout(r, 500));
    await runAll(ups());
    await waitFor(async () => heard.includes('expanded'), { timeoutMs: 5_000, description: 'NOTIFY of expanded' });
    unwatch();
    await pf.close();
    const expanded = await recorded(suite, ID);
    assert.equal(expanded.phase, 'expanded');
    assert.equal(expanded.lastActor, 'phaseflag-generate:sql');
    assert.deepEqual(await expandObjects(suite, 'orders_s'), { column: true, indexValid: true, checkValidated: true });
    const status = (await w.run(['status', ID, '--json'])).json().migrations[0];
    assert.equal(status.phase, 'expanded');

    await runAll(ups());
    assert.deepEqual(await recorded(suite, ID), expanded, 'no second transition, no event');

    await runAll(downs());
    const back = await recorded(suite, ID);
    assert.equal(back.phase, 'rolled-back');
    assert.equal(back.version, expanded.version! + 1);
    assert.deepEqual(await expandObjects(suite, 'orders_s'), { column: false, indexValid: null, checkValidated: null });
    await runAll(downs());
    assert.deepEqual(await recorded(suite, ID), back, 'a second down changes nothing');
  });

  it('the controller continues from the files by its flags to contracted; the files rerun afterwards (psql -f too) change nothing, their downs refuse', async () => {
    await runAll(ups());
    assert.equal((await recorded(suite, ID)).phase, 'expanded');
    await flagsOn(w, unleash, ID, ['dual-write', 'backfill', 'read-new', 'contract']);
    assert.equal(await runController(w, ID), 'contracted');
    assert.equal(await wrongRows(suite, 'orders_s'), 0);
    const contracted = await recorded(suite, ID);

    await runAll(ups());
    const psql = psqlPath();
    if (psql) {
      for (const f of ups())
        execFileSync(
          psql,
          ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', suite.databaseUrl, '-f', join(w.dir, 'sql', f)],
          {
            stdio: 'pipe',
          },
        );
    }
    assert.deepEqual(await recorded(suite, ID), contracted);

    await assert.rejects(client.query(readFileSync(join(w.dir, 'sql', downs()[0]!), 'utf8')), (e: pg.DatabaseError) => {
      assert.equal(
        e.message,
        'phaseflag: migration "orders-sql" is contracted: these files undo expand only; the migration has moved on since',
      );
      assert.match(e.hint ?? '', /npx phaseflag rollback orders-sql/);
      return true;
    });
    assert.deepEqual(await recorded(suite, ID), contracted);
  });

  it('Flyway names: V…__….sql, undo U…__….sql, and executeInTransaction=false beside the CONCURRENTLY file', async () => {
    const r = await w.run([
      'generate',
      ID,
      '--format',
      'sql',
      '--naming',
      'flyway',
      '--out',
      'flyway',
      '--timestamp',
      '20261207063000',
    ]);
    assert.equal(r.code, EXIT.ok, r.stderr);
    assert.deepEqual(readdirSync(join(w.dir, 'flyway')).sort(), [
      'U20261207063000__orders-sql_expand.sql',
      'U20261207063001__orders-sql_expand_index.sql',
      'U20261207063002__orders-sql_expand_record.sql',
      'V20261207063000__orders-sql_expand.sql',
      'V20261207063001__orders-sql_expand_index.sql',
      'V20261207063001__orders-sql_expand_index.sql.conf',
      'V20261207063002__orders-sql_expand_record.sql',
    ]);
    assert.equal(
      readFileSync(join(w.dir, 'flyway', 'V20261207063001__orders-sql_expand_index.sql.conf'), 'utf8'),
      'executeInTransaction=false\n',
    );
    const partitioned = await w.run(['generate', 'orders-part', '--format', 'sql', '--out', 'part', '--json']);
    assert.equal(partitioned.code, EXIT.usage, partitioned.stderr);
    assert.equal(partitioned.json().error.code, 'PF_INVALID_OPTIONS');
    assert.match(partitioned.json().error.hint, /--format knex/);
    assert.equal(existsSync(join(w.dir, 'part')), false, 'nothing was written');
    const sqlOnly = await w.run(['generate', ID, '--format', 'sql', '--only', 'contract', '--out', 'x', '--json']);
    assert.equal(sqlOnly.code, EXIT.usage);
    assert.equal(sqlOnly.json().error.code, 'PF_USAGE_BAD_OPTION');
  });
});
