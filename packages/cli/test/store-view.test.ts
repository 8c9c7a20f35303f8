import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isPhaseflagError } from '@phaseflag/core';
import { Phaseflag } from '@phaseflag/postgres';
import { createSuiteSchema, type Suite } from '@phaseflag/testkit';
import { EXIT } from '../src/exit-codes.js';
import { snapshot } from './roles.js';
import { createOrders, ordersConfig, workdir, type Workdir } from './support.js';

/** status reads only; it shows what the store holds beyond the config; history; init adds to a config. */
describe('phaseflag CLI: read-only status, the store beyond the config, history, init with a config', function () {
  this.timeout(180_000);
  let suite: Suite;
  let w: Workdir;

  before(async () => {
    suite = await createSuiteSchema('cli store view');
    w = workdir(suite);
    await createOrders(suite, 50);
    await createOrders(suite, 50, 'orders_b');
  });
  after(async () => {
    w?.remove();
    await suite?.cleanup();
  });

  const exists = async (schema: string) =>
    (await suite.knex.raw('SELECT to_regnamespace(?) AS n', [schema])).rows[0].n !== null;

  it('status installs nothing, registers nothing and says so when the store is missing or older; history is typed', async () => {
    w.writeConfig(ordersConfig(suite.schema));
    const missing = await w.run(['status', '--json']);
    assert.equal(missing.code, EXIT.ok, missing.stderr);
    assert.deepEqual(missing.json().stateStore, { schema: suite.stateSchema, installed: false, version: 0, latest: 7 });
    assert.equal(missing.json().migrations[0].phase, 'pending');
    assert.equal(missing.json().migrations[0].table, `${suite.schema}.orders`);
    assert.match(missing.stderr, /state store is not installed/);
    assert.equal(await exists(suite.stateSchema), false, 'status created the state schema');
    const noLog = await w.run(['history', 'orders-amount', '--json']);
    assert.equal(noLog.code, EXIT.usage);
    assert.equal(noLog.json().error.code, 'PF_STATE_NOT_INSTALLED');
    const pf = new Phaseflag({ knex: suite.knex, stateSchema: suite.stateSchema });
    const handle = pf.migration({
      id: 'orders-amount',
      table: `${suite.schema}.orders`,
      oldColumn: 'amount_cents',
      newColumn: { name: 'amount', type: 'numeric(12,2)' },
      backfill: 'amount_cents::numeric / 100',
    });
    await assert.rejects(handle.status(), (e) => isPhaseflagError(e) && e.code === 'PF_STATE_NOT_INSTALLED');
    assert.equal((await handle.inspect({ register: false })).record.phase, 'pending');
    await pf.close();

    assert.equal((await w.run(['install'])).code, EXIT.ok);
    const before = await snapshot(suite);
    const registered = await w.run(['status', 'orders-amount', '--json']);
    assert.equal(registered.code, EXIT.ok, registered.stderr);
    assert.equal(registered.json().migrations[0].guards[0].action, 'expand');
    assert.deepEqual(await snapshot(suite), before, 'status wrote (as a role that could)');

    await suite.knex.raw('DELETE FROM ??.schema_version WHERE version = 7', [suite.stateSchema]);
    const older = await w.run(['status', '--json']);
    assert.equal(older.code, EXIT.usage, older.stderr);
    assert.equal(older.json().error.code, 'PF_STATE_SCHEMA_OUTDATED');
    assert.match(older.stderr, /is at version 6; this phaseflag reads version 7/);
    assert.equal(
      (await suite.knex.raw('SELECT count(*)::int AS n FROM ??.schema_version', [suite.stateSchema])).rows[0].n,
      6,
    );
    await suite.knex.raw('INSERT INTO ??.schema_version (version) VALUES (7)', [suite.stateSchema]);
  });

  it('init adds a migration to the config; status shows one the config dropped, in dual-write with its trigger; history', async () => {
    const fresh = workdir(suite);
    try {
      const first = await fresh.run(['init', '--id', 'a-amount', '--table', `${suite.schema}.orders`]);
      assert.equal(first.code, EXIT.ok, first.stderr);
      const second = await fresh.run(['init', '--id', 'b-amount', '--table', `${suite.schema}.orders_b`, '--json']);
      assert.equal(second.code, EXIT.ok, second.stderr);
      assert.equal(second.json().addedToConfig, true);
      const config = readFileSync(join(fresh.dir, 'phaseflag.config.ts'), 'utf8');
      assert.match(config, /migrations: \[aAmount, bAmount\]/);
      assert.match(config, /import \{ bAmount \} from '\.\/migrations\/b-amount\.js';/);
      const dup = await fresh.run(['init', '--id', 'a-amount', '--force', '--json']);
      assert.equal(dup.code, EXIT.usage);
      assert.equal(dup.json().error.code, 'PF_USAGE_DUPLICATE_MIGRATION');
      assert.equal(
        readFileSync(join(fresh.dir, 'phaseflag.config.ts'), 'utf8'),
        config,
        'the refusal changed the config',
      );
      const both = await fresh.run(['status', '--json']);
      assert.deepEqual(
        (both.json().migrations as Array<{ id: string }>).map((m) => m.id),
        ['a-amount', 'b-amount'],
      );

      for (const step of ['expand', 'dual-write']) assert.equal((await fresh.run([step, 'b-amount'])).code, EXIT.ok);
      // b-amount leaves the config while in dual-write: its trigger still rewrites every write to orders_b.
      fresh.writeConfig(config.replace(', bAmount]', ']'));
      const status = await fresh.run(['status', '--json']);
      assert.equal(status.code, EXIT.ok, status.stderr);
      assert.deepEqual(
        (status.json().migrations as Array<{ id: string }>).map((m) => m.id),
        ['a-amount'],
      );
      const [hidden] = status.json().notInConfig as Array<Record<string, unknown>>;
      assert.equal(hidden!.id, 'b-amount');
      assert.equal(hidden!.phase, 'dual-write');
      assert.equal(hidden!.syncTriggerInstalled, true);
      assert.equal(hidden!.table, `${suite.schema}.orders_b`);
      const text = await fresh.run(['status']);
      assert.match(
        text.stdout,
        /In the state store, not in the config:[\s\S]*b-amount[\s\S]*dual-write \(v2\)[\s\S]*on the table/,
      );
      const one = await fresh.run(['status', 'b-amount', '--json']);
      assert.equal(one.code, EXIT.ok, one.stderr);
      assert.deepEqual(one.json().migrations, []);
      assert.equal(one.json().notInConfig[0].id, 'b-amount');

      const history = await fresh.run(['history', 'b-amount', '--json']);
      assert.equal(history.code, EXIT.ok, history.stderr);
      const events = history.json().events as Array<{ kind: string; action: string; toPhase: string; at: string }>;
      assert.deepEqual(
        events.filter((e) => e.kind === 'transition').map((e) => `${e.action}→${e.toPhase}`),
        ['expand→expanded', 'dual-write→dual-write'],
      );
      assert.ok(!Number.isNaN(Date.parse(events[0]!.at)));
      const human = await fresh.run(['history', 'b-amount']);
      assert.match(human.stdout, /b-amount: \d+ events[\s\S]*transition[\s\S]*expanded → dual-write/);
      const unknown = await fresh.run(['history', 'nope', '--json']);
      assert.equal(unknown.code, EXIT.usage);
      assert.equal(unknown.json().error.code, 'PF_UNKNOWN_MIGRATION');
      assert.ok(existsSync(join(fresh.dir, 'migrations', 'b-amount.ts')));
    } finally {
      fresh.remove();
    }
  });
});
