import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { defineMigration, StaticFlagSource, type Logger } from '@phaseflag/core';
import { Phaseflag, type KnexRouter } from '@phaseflag/postgres';
import { createSuiteSchema, waitFor, type Suite } from '@phaseflag/testkit';
import knexFactory, { type Knex } from 'knex';
import { EXIT } from '../src/exit-codes.js';
import { createRoles, snapshot, type Roles } from './roles.js';
import { createOrders, ordersConfig, workdir, type Workdir } from './support.js';

/** Each phaseflag role, connected as itself (a connection string with its user), with only what `grants` prints. */
describe('phaseflag CLI: least privilege, by role', function () {
  this.timeout(240_000);
  let suite: Suite;
  let roles: Roles;
  let w: Workdir;
  const as = (kind: string) => ({ env: { DATABASE_URL: roles.url(roles.names[kind]!) } });

  before(async () => {
    suite = await createSuiteSchema('cli privileges');
    roles = await createRoles(suite.knex, suite.databaseUrl, ['owner', 'service', 'controller', 'readonly'], {
      nologin: ['owner'],
    });
    w = workdir(suite);
    // With an index and a check: the controller creates both, concurrently and NOT VALID, then validates.
    w.writeConfig(
      ordersConfig(suite.schema).replace(
        "newColumn: { name: 'amount', type: 'numeric(12,2)' }",
        "newColumn: { name: 'amount', type: 'numeric(12,2)', nullable: false, index: true, check: 'amount >= 0' }",
      ),
    );
    await createOrders(suite, 300);
    // The application's tables belong to a role of their own; the schema is the suite's (owned by the test user).
    await suite.knex.raw('ALTER TABLE orders OWNER TO ??', [roles.names.owner!]);
    const install = await w.run(['install', '--json']);
    assert.equal(install.code, EXIT.ok, install.stderr);
    for (const role of ['service', 'controller', 'readonly']) {
      const g = await w.run(['grants', '--role', role, '--to', roles.names[role]!]);
      assert.equal(g.code, EXIT.ok, g.stderr);
      await suite.knex.raw(g.stdout);
    }
  });
  after(async () => {
    w?.remove();
    await roles?.drop();
    await suite?.cleanup();
  });

  it('grants prints the SQL of each role with every identifier quoted (text and --json); a bad role is refused', async () => {
    const s = await w.run(['grants', '--role', 'service', '--to', 'orders app']);
    assert.equal(s.code, EXIT.ok, s.stderr);
    const q = `"${suite.stateSchema}"`;
    assert.match(s.stdout, new RegExp(`^GRANT USAGE ON SCHEMA ${q} TO "orders app";$`, 'm'));
    assert.match(
      s.stdout,
      new RegExp(`^GRANT SELECT ON ${q}\\."schema_version", ${q}\\."migrations" TO "orders app";$`, 'm'),
    );
    assert.match(
      s.stdout,
      new RegExp(
        `^GRANT SELECT, INSERT, UPDATE, DELETE ON ${q}\\."instances", ${q}\\."shadow_reads" TO "orders app";$`,
        'm',
      ),
    );
    assert.match(
      s.stdout,
      new RegExp(`^GRANT SELECT, INSERT, UPDATE, DELETE ON "${suite.schema}"\\."orders" TO "orders app";$`, 'm'),
    );
    const c = (await w.run(['grants', '--role', 'controller', '--to', 'ops', '--json'])).json<{ sql: string }>();
    assert.match(
      c.sql,
      new RegExp(`^GRANT "${roles.names.owner}" TO "ops"; -- owner of "${suite.schema}"\\."orders"$`, 'm'),
    );
    assert.match(c.sql, new RegExp(`^GRANT USAGE, CREATE ON SCHEMA ${q} TO "ops";$`, 'm'));
    const r = await w.run(['grants', '--role', 'readonly', '--to', 'ro']);
    assert.doesNotMatch(r.stdout, /INSERT|UPDATE|DELETE|CREATE/);
    const bad = await w.run(['grants', '--role', 'admin', '--to', 'x', '--json']);
    assert.equal(bad.code, EXIT.usage);
    assert.equal(bad.json().error.code, 'PF_USAGE_BAD_OPTION');
  });

  it('service routes through every phase without a warning, controller runs the lifecycle, readonly reads, each refused the rest', async () => {
    const warnings: string[] = [];
    const say = (m: string, f?: Record<string, unknown>) => warnings.push(`${m} ${JSON.stringify(f ?? {})}`);
    const logger: Logger = { debug() {}, info() {}, warn: say, error: say };
    const svc: Knex = knexFactory({
      client: 'pg',
      connection: roles.url(roles.names.service!),
      pool: { min: 0, max: 4 },
    });
    const pf = new Phaseflag({ knex: svc, stateSchema: suite.stateSchema, logger, pollIntervalMs: 100 });
    let router: KnexRouter | undefined;
    try {
      assert.deepEqual(await pf.install(), { from: 7, to: 7 }, 'install() at the latest version writes nothing');
      // Refused, typed, and nothing changed: the service may not move a migration.
      const denied = await w.run(['expand', 'orders-amount', '--json'], as('service'));
      assert.equal(denied.code, EXIT.refused, denied.stderr);
      assert.equal(denied.json().error.code, 'PF_PERMISSION_DENIED');
      assert.equal(await count(suite, `${suite.stateSchema}.migrations`), 0);

      const migration = defineMigration({
        id: 'orders-amount',
        table: `${suite.schema}.orders`,
        oldColumn: 'amount_cents',
        newColumn: { name: 'amount', type: 'numeric(12,2)', nullable: false, index: true, check: 'amount >= 0' },
        backfill: 'amount_cents::numeric / 100',
        reverse: '(amount * 100)::integer',
        batch: { size: 100, targetBatchMs: 0, pauseMs: 0 },
      });
      router = await pf.migration(migration).router(new StaticFlagSource({ 'orders-amount.read-new': true }), {
        heartbeatMs: 200,
      });
      const r = router;
      const orders = () => svc.withSchema(suite.schema).table('orders');
      let nextId = 10_000;
      const roundTrip = async (phase: string) => {
        await waitFor(async () => r.core.currentPhase === phase, { timeoutMs: 10_000, description: phase });
        const id = nextId++;
        await orders().insert(r.row({ id, amount_cents: 1250 }));
        await orders()
          .where({ id })
          .update(r.row({ amount_cents: 1300 }));
        const row = (await orders().select(r.select()).where({ id }).first()) as { amount: string };
        assert.equal(row.amount, '13.00', phase);
        await waitFor(
          async () =>
            (
              await suite.knex.raw('SELECT phase FROM ??.instances WHERE instance_id = ?', [
                suite.stateSchema,
                r.instanceId,
              ])
            ).rows[0]?.phase === phase,
          { timeoutMs: 10_000, description: `heartbeat in ${phase}` },
        );
        assert.deepEqual(warnings, [], phase);
      };
      await roundTrip('pending');

      const step = async (args: string[]) => {
        const res = await w.run([...args, '--json'], as('controller'));
        assert.equal(res.code, EXIT.ok, `${args.join(' ')}: ${res.stderr}`);
      };
      await step(['expand', 'orders-amount']);
      await roundTrip('expanded');
      // Read-only may not move a migration either.
      const roDenied = await w.run(['dual-write', 'orders-amount', '--json'], as('readonly'));
      assert.equal(roDenied.code, EXIT.refused, roDenied.stderr);
      assert.equal(roDenied.json().error.code, 'PF_PERMISSION_DENIED');
      await step(['dual-write', 'orders-amount']);
      await roundTrip('dual-write');

      // status and history as read-only: they work, and nothing in the catalog or the store changed.
      const before = await snapshot(suite);
      const status = await w.run(['status', '--json'], as('readonly'));
      assert.equal(status.code, EXIT.ok, status.stderr);
      assert.equal(status.json().migrations[0].phase, 'dual-write');
      assert.equal(status.json().migrations[0].error, null);
      const history = await w.run(['history', 'orders-amount', '--json'], as('readonly'));
      assert.equal(history.code, EXIT.ok, history.stderr);
      const actions = (history.json().events as Array<{ action: string; kind: string }>)
        .filter((e) => e.kind === 'transition')
        .map((e) => e.action);
      assert.deepEqual(actions, ['expand', 'dual-write']);
      assert.deepEqual(await snapshot(suite), before);

      await step(['backfill', 'orders-amount']);
      await step(['verify', 'orders-amount']);
      await roundTrip('verified');
      await step(['read-new', 'orders-amount']);
      await roundTrip('read-new');
      await step(['contract', 'orders-amount', '--confirm', '--drop-old-column']);
      await roundTrip('contracted');

      const instance = r.instanceId;
      await r.close();
      router = undefined;
      assert.equal(
        (
          await suite.knex.raw('SELECT count(*)::int AS n FROM ??.instances WHERE instance_id = ?', [
            suite.stateSchema,
            instance,
          ])
        ).rows[0].n,
        0,
        'the service removed its heartbeat row at close',
      );
      assert.deepEqual(warnings, []);

      // The controller may not create schemas in the database: a new state store is refused, and not created.
      const other = `pf_state_${randomBytes(4).toString('hex')}`;
      const ctlDenied = await w.run(['install', '--state-schema', other, '--json'], as('controller'));
      assert.equal(ctlDenied.code, EXIT.refused, ctlDenied.stderr);
      assert.equal(ctlDenied.json().error.code, 'PF_PERMISSION_DENIED');
      assert.equal((await suite.knex.raw('SELECT to_regnamespace(?) AS n', [other])).rows[0].n, null);
    } finally {
      await router?.close();
      await pf.close();
      await svc.destroy();
    }
  });
});

async function count(suite: Suite, table: string): Promise<number> {
  const [schema, name] = table.split('.');
  return (await suite.knex.raw('SELECT count(*)::int AS n FROM ??.??', [schema!, name!])).rows[0].n;
}
