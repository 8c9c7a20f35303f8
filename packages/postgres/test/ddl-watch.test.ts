import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { defineMigration, type Migration } from '@phaseflag/core';
import { amountInput, createAmountTable, createSuiteSchema, type Suite } from '@phaseflag/testkit';
import pg from 'pg';
import { Phaseflag } from '../src/index.js';
import { ddlWatchTriggerNames } from '../src/internal.js';
import { SCHEMA_VERSIONS } from '../src/store/schema.js';

/**
 * The DDL watch (store/ddl-watch-sql.ts): event triggers that record DDL phaseflag did not run on a migration's
 * table. The test database is shared by every suite, so each test here leaves no event trigger behind (the suite's
 * state schema takes them with it, which one test proves).
 */
describe('the DDL watch: DDL on a migration table that phaseflag did not run, recorded as it happens', function () {
  this.timeout(120_000);
  let suite: Suite;
  let pf: Phaseflag;
  let m: Migration;
  const suffix = randomBytes(3).toString('hex');
  const role = `pf_drift_owner_${suffix}`;

  before(async () => {
    suite = await createSuiteSchema('ddl_watch');
    pf = new Phaseflag({ knex: suite.knex, stateSchema: suite.stateSchema, graceMs: 0, watchDdl: true });
    await pf.install();
    await createAmountTable(suite.knex, 'orders_watched', 200);
    m = defineMigration(
      amountInput('watched', 'orders_watched', {
        newColumn: { name: 'amount', type: 'numeric(12,2)', nullable: false, index: true },
      }),
    );
  });
  after(async () => {
    await pf?.close();
    await suite?.knex.raw(`DROP OWNED BY ${role}`).catch(() => undefined);
    await suite?.knex.raw(`DROP ROLE IF EXISTS ${role}`).catch(() => undefined);
    await suite?.cleanup();
  });

  const eventTriggers = async (stateSchema: string) => {
    const names = ddlWatchTriggerNames(stateSchema);
    return (
      await suite.knex.raw(
        'SELECT evtname, evtevent, evtenabled FROM pg_event_trigger WHERE evtname IN (?, ?) ORDER BY 2',
        [names.ddl, names.drop],
      )
    ).rows as { evtname: string; evtevent: string; evtenabled: string }[];
  };
  const logged = async (table: string) =>
    (
      await suite.knex.raw('SELECT command_tag FROM ??.ddl_log WHERE table_name = ? ORDER BY id', [
        suite.stateSchema,
        table,
      ])
    ).rows.map((r: { command_tag: string }) => r.command_tag) as string[];

  it('install creates two event triggers named after the state schema, and drift says DDL is watched', async () => {
    const found = await eventTriggers(suite.stateSchema);
    assert.deepEqual(
      found.map((e) => [e.evtevent, e.evtenabled]),
      [
        ['ddl_command_end', 'O'],
        ['sql_drop', 'O'],
      ],
    );
    await pf.install(); // idempotent: nothing added
    assert.equal((await eventTriggers(suite.stateSchema)).length, 2);
    const r = await pf.migration(m).drift();
    assert.deepEqual(r.watch, { active: true, reason: null });
  });

  it("records a hand-made ALTER TABLE and DROP INDEX (what, when, which role), never phaseflag's own DDL nor other tables'", async () => {
    const h = pf.migration(m);
    await h.expand(); // ADD COLUMN, CREATE INDEX CONCURRENTLY: phaseflag's own
    await h.startDualWrite(); // the trigger and its function
    assert.deepEqual(await logged('orders_watched'), []);
    assert.deepEqual((await h.drift()).recordedDdl, []);

    await suite.knex.raw('CREATE TABLE unrelated (id int PRIMARY KEY)');
    await suite.knex.raw('ALTER TABLE unrelated ADD COLUMN note text');
    await suite.knex.raw('CREATE INDEX unrelated_note ON unrelated (note)');
    await suite.knex.raw('DROP INDEX unrelated_note');
    assert.deepEqual(await logged('unrelated'), []);

    const before = new Date();
    // A default set by hand (a type change is refused outright while the sync trigger's WHEN clause reads the column).
    await suite.knex.raw('ALTER TABLE orders_watched ALTER COLUMN amount SET DEFAULT 7');
    await suite.knex.raw('DROP INDEX ??', [m.newColumn.index!.name]);
    const r = await h.drift();
    assert.deepEqual(
      r.recordedDdl.map((d) => [d.commandTag, d.objectType, d.role, d.tableName]),
      [
        ['ALTER TABLE', 'table', 'postgres', 'orders_watched'],
        ['DROP INDEX', 'index', 'postgres', 'orders_watched'],
      ],
    );
    assert.match(r.recordedDdl[0]!.statement ?? '', /ALTER COLUMN amount SET DEFAULT 7/);
    assert.ok(r.recordedDdl[0]!.at >= new Date(before.getTime() - 1000));
    assert.equal(r.drifted, true);
    // The catalog findings say what changed; the log says who and when.
    assert.deepEqual(r.findings.map((f) => f.object).sort(), ['index', 'new column']);

    assert.equal(await pf.acknowledgeDdl([m]), 2);
    assert.deepEqual((await h.drift()).recordedDdl, []);
    await suite.knex.raw('ALTER TABLE orders_watched ALTER COLUMN amount DROP DEFAULT');
    await suite.knex.raw('CREATE INDEX CONCURRENTLY ?? ON orders_watched (amount)', [m.newColumn.index!.name]);
    await pf.acknowledgeDdl([m]);
    assert.equal((await h.drift()).drifted, false);
  });

  it('records as the role that ran it, one with no privilege on the state schema (SECURITY DEFINER)', async () => {
    await suite.knex.raw(`CREATE ROLE ${role}`);
    await suite.knex.raw(`GRANT USAGE ON SCHEMA ?? TO ${role}`, [suite.schema]);
    await suite.knex.raw(`ALTER TABLE orders_watched OWNER TO ${role}`);
    await pf.acknowledgeDdl([m]);
    await suite.knex.transaction(async (trx) => {
      await trx.raw(`SET LOCAL ROLE ${role}`);
      assert.equal(
        (await trx.raw('SELECT has_schema_privilege(?, ?) AS u', [suite.stateSchema, 'USAGE'])).rows[0].u,
        false,
      );
      await trx.raw('ALTER TABLE orders_watched ADD COLUMN note text');
    });
    const r = await pf.migration(m).drift();
    assert.deepEqual(
      r.recordedDdl.map((d) => [d.commandTag, d.role]),
      [['ALTER TABLE', role]],
    );
    await suite.knex.raw('ALTER TABLE orders_watched OWNER TO CURRENT_USER');
    await pf.acknowledgeDdl([m]);
  });

  it("never fails anyone's DDL: an error inside the watch becomes a warning", async () => {
    await suite.knex.raw('ALTER TABLE ??.ddl_log RENAME TO ddl_log_away', [suite.stateSchema]);
    const notices: string[] = [];
    const client = new pg.Client({ connectionString: suite.connectionString });
    client.on('notice', (n) => notices.push(n.message ?? ''));
    await client.connect();
    try {
      await client.query('ALTER TABLE orders_watched ADD COLUMN extra int');
      await client.query('CREATE INDEX orders_watched_extra ON orders_watched (extra)');
      await client.query('DROP INDEX orders_watched_extra');
      await client.query('ALTER TABLE orders_watched DROP COLUMN extra');
    } finally {
      await client.end();
      await suite.knex.raw('ALTER TABLE ??.ddl_log_away RENAME TO ddl_log', [suite.stateSchema]);
    }
    assert.ok(notices.length >= 2, JSON.stringify(notices));
    for (const n of notices)
      assert.match(n, /phaseflag: the DDL watch of state schema .* could not record a statement/);
  });

  it('costs little on unrelated DDL (measured: with the watch against with its triggers disabled)', async () => {
    const names = ddlWatchTriggerNames(suite.stateSchema);
    await suite.knex.raw('CREATE TABLE cost_probe (id int PRIMARY KEY, v int)');
    const client = new pg.Client({ connectionString: suite.connectionString });
    await client.connect();
    const run = async (n: number) => {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < n; i++) await client.query(`ALTER TABLE cost_probe ALTER COLUMN v SET DEFAULT ${i}`);
      return Number(process.hrtime.bigint() - t0) / 1e6 / n;
    };
    const setWatch = (on: boolean) =>
      Promise.all(
        [names.ddl, names.drop].map((n) => suite.knex.raw(`ALTER EVENT TRIGGER ?? ${on ? 'ENABLE' : 'DISABLE'}`, [n])),
      );
    try {
      await run(50); // warm-up
      const samples = { on: [] as number[], off: [] as number[] };
      for (let round = 0; round < 4; round++) {
        await setWatch(false);
        samples.off.push(await run(100));
        await setWatch(true);
        samples.on.push(await run(100));
      }
      const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
      const on = median(samples.on);
      const off = median(samples.off);
      console.log(
        `      DDL watch on unrelated DDL: ${on.toFixed(3)} ms per ALTER TABLE with it, ${off.toFixed(3)} ms without (+${(on - off).toFixed(3)} ms)`,
      );
      assert.ok(on - off < 2, `the watch adds ${(on - off).toFixed(3)} ms to each unrelated statement`);
    } finally {
      await setWatch(true);
      await client.end();
    }
  });

  it('a role that may not create event triggers installs the store without them; drift says DDL is not watched and why', async () => {
    const other = `${suite.stateSchema}_nosuper`;
    const db = (await suite.knex.raw('SELECT current_database() AS d')).rows[0].d as string;
    await suite.knex.raw(`ALTER ROLE ${role} LOGIN`);
    await suite.knex.raw(`GRANT CREATE ON DATABASE ?? TO ${role}`, [db]);
    const url = new URL(suite.databaseUrl);
    url.username = role;
    const knex = (await import('knex')).default({ client: 'pg', connection: url.toString(), pool: { min: 0, max: 2 } });
    const limited = new Phaseflag({ knex, stateSchema: other, watchDdl: true });
    try {
      await limited.install();
      assert.deepEqual(await eventTriggers(other), []);
      const report = await limited.drift([]);
      assert.equal(report.watch.active, false);
      assert.match(report.watch.reason ?? '', /only a superuser/);
    } finally {
      await limited.close();
      await knex.destroy();
      await suite.knex.raw('DROP SCHEMA IF EXISTS ?? CASCADE', [other]);
      await suite.knex.raw(`REVOKE CREATE ON DATABASE ?? FROM ${role}`, [db]);
    }
  });

  it('a store at version 5 upgrades to the latest: the log table, the functions, and (as a superuser) the event triggers', async () => {
    const other = `${suite.stateSchema}_v5`;
    await suite.knex.transaction(async (trx) => {
      await trx.raw('CREATE SCHEMA ??', [other]);
      await trx.raw(
        'CREATE TABLE ??.schema_version (version integer NOT NULL, installed_at timestamptz NOT NULL DEFAULT now())',
        [other],
      );
      for (const v of SCHEMA_VERSIONS.filter((x) => x.version <= 5)) {
        await v.up(trx, other);
        await trx.raw('INSERT INTO ??.schema_version (version) VALUES (?)', [other, v.version]);
      }
    });
    const older = new Phaseflag({ knex: suite.knex, stateSchema: other, watchDdl: true });
    try {
      assert.equal((await older.drift([])).watch.active, false);
      assert.match((await older.drift([])).watch.reason ?? '', /version 5; the DDL watch comes with version 6/);
      assert.deepEqual(await older.install(), { from: 5, to: 7 });
      assert.equal((await eventTriggers(other)).length, 2);
      assert.deepEqual((await older.drift([])).watch, { active: true, reason: null });
    } finally {
      await older.close();
      await suite.knex.raw('DROP SCHEMA ?? CASCADE', [other]);
    }
    assert.deepEqual(await eventTriggers(other), []);
  });

  it('goes with its state schema: DROP SCHEMA … CASCADE removes both event triggers, and DDL goes on working', async () => {
    const other = `${suite.stateSchema}_b`;
    const second = new Phaseflag({ knex: suite.knex, stateSchema: other, watchDdl: true });
    await second.install();
    await second.close();
    assert.equal((await eventTriggers(other)).length, 2);
    await suite.knex.raw('DROP SCHEMA ?? CASCADE', [other]);
    assert.deepEqual(await eventTriggers(other), []);
    await suite.knex.raw('ALTER TABLE orders_watched ADD COLUMN after_drop int');
    // The suite's own state schema goes the same way at cleanup; what it leaves is checked there.
    await suite.knex.raw('DROP SCHEMA ?? CASCADE', [suite.stateSchema]);
    assert.deepEqual(await eventTriggers(suite.stateSchema), []);
  });
});
