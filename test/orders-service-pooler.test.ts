import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  createSuiteSchema,
  ensurePgBouncer,
  startPgBouncer,
  startUnleash,
  type PgBouncer,
  type Suite,
  type UnleashServer,
} from '@phaseflag/testkit';
import { provisionFlags } from '@phaseflag/unleash';
import { createSchema, migrations, seed, startLoad, type LoadHandle } from '@phaseflag/example-orders-service';
import knexFactory, { type Knex } from 'knex';
import { OrdersServiceProcess } from './fixtures/orders-service-process.js';

const ROWS = 3000;
const ENV = 'development';
const IDS = [migrations.ordersAmount.id, migrations.customersEmail.id];

/**
 * The demo's flow (orders-service.test.ts) as a hosted deployment runs it: the two service instances reach Postgres
 * through PgBouncer in transaction mode (DATABASE_URL), their embedded controllers through the database's own
 * address (PHASEFLAG_DIRECT_URL). The example's tables are unqualified, found through search_path, which PgBouncer
 * does not pass on: so this suite has a database of its own, with the tables in `public`.
 */
describe('orders-service behind PgBouncer: services pooled, controllers direct', function () {
  this.timeout(300_000);
  let suite: Suite;
  let database: string;
  let db: Knex;
  let bouncer: PgBouncer;
  let unleash: UnleashServer;
  let services: OrdersServiceProcess[] = [];
  let load: LoadHandle | undefined;
  const strategies = new Map<string, string>();

  before(async function () {
    const reason = ensurePgBouncer();
    if (reason) {
      console.log(`      (skipped: ${reason})`);
      this.skip();
    }
    suite = await createSuiteSchema('orders_pooler');
    database = `pf_pooler_${randomBytes(4).toString('hex')}`;
    await suite.knex.raw('CREATE DATABASE ??', [database]);
    const direct = new URL(suite.databaseUrl);
    direct.pathname = `/${database}`;
    db = knexFactory({ client: 'pg', connection: direct.toString(), pool: { min: 0, max: 2 } });
    await createSchema(db);
    await seed(db, { rows: ROWS });
    [bouncer, unleash] = await Promise.all([startPgBouncer({ target: direct.toString() }), startUnleash()]);
    for (const m of [migrations.ordersAmount, migrations.customersEmail]) {
      const report = await provisionFlags(m, { url: unleash.url, token: unleash.adminToken, environment: ENV });
      for (const f of report.flags) strategies.set(f.name, f.strategyId!);
    }
    services = await Promise.all(
      ['orders-a', 'orders-b'].map((instanceId) =>
        OrdersServiceProcess.start({
          DATABASE_URL: bouncer.url,
          PHASEFLAG_DIRECT_URL: direct.toString(),
          UNLEASH_URL: `${unleash.url}/api`,
          UNLEASH_API_TOKEN: unleash.clientToken,
          UNLEASH_REFRESH_MS: '1000',
          INSTANCE_ID: instanceId,
          PORT: '0',
          PHASEFLAG_CONTROLLER_INTERVAL_MS: '1000',
        }),
      ),
    );
    load = startLoad({ targets: services.map((s) => s.url), concurrency: 4, writeRatio: 0.3, seededRows: ROWS });
  });

  after(async () => {
    await load?.stop();
    for (const s of services) await s.kill();
    await unleash?.stop();
    await bouncer?.stop();
    await db?.destroy();
    if (database) await suite.knex.raw('DROP DATABASE IF EXISTS ?? WITH (FORCE)', [database]).catch(() => undefined);
    await suite?.cleanup();
  });

  const flags = (step: string, fn: (name: string) => Promise<void>) =>
    Promise.all(IDS.map((id) => fn(`${id}.${step}`)));
  const everyApplies = (phase: string, timeoutMs = 90_000) =>
    Promise.all(services.flatMap((s) => IDS.map((id) => s.applies(id, phase, timeoutMs))));

  it('walks both migrations to contracted by their flags, under load, with no failed request and every row right', async () => {
    await flags('dual-write', (name) => unleash.admin.enable(name, ENV));
    await everyApplies('dual-write');
    await flags('backfill', (name) => unleash.admin.enable(name, ENV));
    await everyApplies('verified');
    await flags('read-new', async (name) => {
      await unleash.admin.setRollout(name, ENV, strategies.get(name)!, 100);
      await unleash.admin.enable(name, ENV);
    });
    await everyApplies('read-new');
    // Both columns right while both are written (after contract the old one is no longer written: not comparable).
    const wrong = (
      await db.raw(`SELECT
        (SELECT count(*) FROM orders WHERE amount IS DISTINCT FROM amount_cents / 100.0)::int AS orders,
        (SELECT count(*) FROM customers WHERE email_normalized IS DISTINCT FROM lower(btrim(email)))::int AS customers`)
    ).rows[0];
    assert.deepEqual(wrong, { orders: 0, customers: 0 });
    await flags('contract', (name) => unleash.admin.enable(name, ENV));
    await everyApplies('contracted');
    const report = await load!.stop();
    load = undefined;
    assert.equal(report.failed, 0, `failed requests:\n  ${report.errorSamples.join('\n  ')}`);
    assert.ok(report.requests > 100, `traffic ran throughout (${report.requests} requests)`);
    const nulls = (
      await db.raw(`SELECT
        (SELECT count(*) FROM orders WHERE amount IS NULL)::int AS orders,
        (SELECT count(*) FROM customers WHERE email_normalized IS NULL)::int AS customers`)
    ).rows[0];
    assert.deepEqual(nulls, { orders: 0, customers: 0 }, 'every row has its new column after contract');
    for (const s of services) {
      const said = s.logs().match(/connected through a transaction pooler \(LISTEN\/NOTIFY unavailable\)/g) ?? [];
      assert.equal(said.length, 1, `${s.instanceId} says once that it polls:\n${s.logs().slice(-2000)}`);
      assert.doesNotMatch(s.logs(), /PF_TRANSACTION_POOLER|PF_MIGRATION_CONFLICT/);
    }
  });
});
