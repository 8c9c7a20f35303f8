import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { waitFor, type Suite, type UnleashServer } from '@phaseflag/testkit';
import { migrations, startLoad, type LoadHandle } from '@phaseflag/example-orders-service';
import { OrdersServiceProcess } from './fixtures/orders-service-process.js';
import type { OtlpReceiver } from './fixtures/orders-otlp-receiver.js';
import { ENV, IDS, ROWS, flag, ordersStack } from './fixtures/orders-stack.js';

/**
 * examples/orders-service end to end, without Docker: the stack of examples/docker-compose.yml (Postgres, a real
 * unleash-server 6.10, an OTLP/HTTP receiver standing in for Jaeger) and two service processes configured by
 * environment only, under the example's own load generator. The operator's only tool is Unleash's Admin API.
 */
describe('orders-service: two instances walk both migrations under load, driven by Unleash', function () {
  this.timeout(240_000);
  const stack = ordersStack();
  const { strategies, serviceEnv, both, everyApplies, views, assertClean, wrongRows } = stack;
  let suite: Suite;
  let unleash: UnleashServer;
  let otlp: OtlpReceiver;
  let services: OrdersServiceProcess[] = [];
  let load: LoadHandle | undefined;

  before(async () => {
    await stack.start();
    ({ suite, unleash, otlp, services, load } = stack);
  });

  after(async () => {
    // The last stages stop the load and the services themselves (and forget them): what is left is what a failure left.
    await stack.stop(load, services);
  });

  it('serves from the old columns at first: both migrations registered and pending, nothing refused', async () => {
    await waitFor(() => load!.snapshot().reads > 200, { timeoutMs: 20_000, description: 'traffic' });
    for (const s of services) {
      for (const v of await views(s))
        assert.deepEqual(
          { phase: v.phase, readsNew: v.readsNew, writes: v.writes.length },
          { phase: 'pending', readsNew: false, writes: 1 },
        );
    }
    const r = load!.snapshot();
    assertClean(r);
    assert.equal(r.readsNew, 0);
    assert.deepEqual(
      services.flatMap((s) => s.events.filter((e) => e.event === 'refused')),
      [],
    );
    // Exactly one instance leads each migration.
    await waitFor(
      () =>
        IDS.every(
          (id) =>
            services.filter((s) => s.events.some((e) => e.event === 'leader' && e.migration === id && e.leader))
              .length === 1,
        ),
      { timeoutMs: 10_000, description: 'one leader per migration' },
    );
  });

  it('dual-write on: expand + sync trigger, then every write fills both columns; read-new turned on too early is refused', async () => {
    await both('dual-write', (name) => unleash.admin.enable(name, ENV));
    await everyApplies('dual-write');
    for (const s of services)
      for (const v of await views(s))
        assert.equal(v.writes.length, 2, `${s.instanceId} ${v.id} writes ${v.writes.join(',')}`);

    const name = flag(migrations.ordersAmount.id, 'read-new');
    await unleash.admin.enable(name, ENV);
    const refused = await Promise.race(
      services.map((s) =>
        s.waitFor((e) => e.event === 'refused' && e.migration === migrations.ordersAmount.id, 20_000, 'the refusal'),
      ),
    );
    assert.equal(refused.action, 'read-new');
    assert.equal(refused.phase, 'dual-write');
    await unleash.admin.disable(name, ENV);
    assertClean(load!.snapshot());
  });

  it('backfill on: both tables are filled in batches and verified automatically', async () => {
    await both('backfill', (name) => unleash.admin.enable(name, ENV));
    await everyApplies('verified', 90_000);
    for (const id of IDS) {
      const done = services
        .flatMap((s) => s.events)
        .find((e) => e.event === 'backfill' && e.migration === id && e.done === true);
      assert.ok(
        done && Number(done.rowsDone) >= (id === migrations.ordersAmount.id ? ROWS : ROWS / 10),
        `${id}: the leader reported the backfill done (${JSON.stringify(done)})`,
      );
    }
    assert.deepEqual(await wrongRows(), { orders: 0, customers: 0 });
    const r = load!.snapshot();
    assertClean(r);
    assert.equal(r.readsNew, 0, 'verified alone moves no read');
  });

  it('read-new at 50% then 100%: reads move user by user, values identical from either column', async () => {
    for (const id of IDS)
      await unleash.admin.setRollout(flag(id, 'read-new'), ENV, strategies.get(flag(id, 'read-new'))!, 50);
    await both('read-new', (name) => unleash.admin.enable(name, ENV));
    await everyApplies('read-new');
    await waitFor(async () => (await Promise.all(services.map(views))).flat().every((v) => v.readsNew === 'partial'), {
      timeoutMs: 20_000,
      description: 'readsNew "partial"',
    });
    const atHalf = load!.snapshot();
    await waitFor(
      () => {
        const r = load!.snapshot();
        return r.readsNew - atHalf.readsNew > 100 && r.readsOld - atHalf.readsOld > 100;
      },
      { timeoutMs: 20_000, description: 'reads from both columns at 50%' },
    );

    for (const id of IDS)
      await unleash.admin.setRollout(flag(id, 'read-new'), ENV, strategies.get(flag(id, 'read-new'))!, 100);
    await waitFor(async () => (await Promise.all(services.map(views))).flat().every((v) => v.readsNew === true), {
      timeoutMs: 20_000,
      description: 'readsNew true',
    });
    await sleep(1500); // requests in flight under the old decision finish (the load does not report when each ends)
    const atFull = load!.snapshot();
    await waitFor(() => load!.snapshot().reads - atFull.reads > 300, { timeoutMs: 20_000, description: 'more reads' });
    const r = load!.snapshot();
    assert.equal(r.readsOld, atFull.readsOld, 'no read from the old column at 100%');
    assert.ok(r.readsNew > 0);
    assertClean(r);
    assert.deepEqual(
      await wrongRows(),
      { orders: 0, customers: 0 },
      'every row right: amount = amount_cents / 100.0, email_normalized = lower(btrim(email))',
    );
  });

  it('contract on: writes stop filling the old columns, constraints are enforced, and no request ever failed', async () => {
    await both('contract', (name) => unleash.admin.enable(name, ENV));
    await everyApplies('contracted', 60_000);
    const atContract = load!.snapshot().writes;
    await waitFor(() => load!.snapshot().writes - atContract > 100, {
      timeoutMs: 20_000,
      description: 'writes after contract',
    });
    const report = await load!.stop();
    load = undefined;
    assertClean(report);
    console.log(
      `      load: ${report.requests} requests, ${report.failed} failed, reads old/new ${report.readsOld}/${report.readsNew}, ` +
        `p50 ${report.latencyMs.p50} ms, p99 ${report.latencyMs.p99} ms, max ${report.latencyMs.max} ms`,
    );
    for (const s of services)
      for (const v of await views(s))
        assert.deepEqual(
          { phase: v.phase, readsNew: v.readsNew, writes: v.writes.length },
          { phase: 'contracted', readsNew: true, writes: 1 },
        );

    const nulls = (
      await suite.knex.raw(`SELECT (SELECT count(*) FROM orders WHERE amount IS NULL)::int AS orders,
      (SELECT count(*) FROM customers WHERE email_normalized IS NULL)::int AS customers`)
    ).rows[0];
    assert.deepEqual(nulls, { orders: 0, customers: 0 });
    // NOT NULL comes after the phase change, once the grace period has let every instance stop writing old.
    await waitFor(
      async () => {
        const rows = (
          await suite.knex.raw(
            `SELECT is_nullable FROM information_schema.columns
        WHERE table_schema = ? AND column_name IN ('amount', 'email_normalized')`,
            [suite.schema],
          )
        ).rows as Array<{ is_nullable: string }>;
        return rows.length === 2 && rows.every((r) => r.is_nullable === 'NO');
      },
      { timeoutMs: 20_000, description: 'amount and email_normalized NOT NULL' },
    );
  });

  it('PHASEFLAG_DROP_OLD_COLUMN: the old columns go after contract, and an instance started afterwards serves every request', async () => {
    const oldColumns = async () =>
      (
        await suite.knex.raw(
          `SELECT count(*)::int AS n FROM information_schema.columns
      WHERE table_schema = ? AND column_name IN ('amount_cents', 'email')`,
          [suite.schema],
        )
      ).rows[0].n;
    await waitFor(async () => (await oldColumns()) === 0, {
      timeoutMs: 20_000,
      description: 'amount_cents and email dropped',
    });
    const late = await OrdersServiceProcess.start(serviceEnv('orders-c'));
    try {
      const listening = late.events.find((e) => e.event === 'listening');
      assert.deepEqual(listening?.phases, { [IDS[0]!]: 'contracted', [IDS[1]!]: 'contracted' });
      for (const v of await views(late))
        assert.deepEqual(
          { phase: v.phase, readsNew: v.readsNew, writes: v.writes },
          { phase: 'contracted', readsNew: true, writes: [v.id === IDS[0] ? 'amount' : 'email_normalized'] },
        );
      const check = startLoad({ targets: [...services, late].map((s) => s.url), concurrency: 3, writeRatio: 0.5 });
      await waitFor(() => check.snapshot().requests > 300, {
        timeoutMs: 30_000,
        description: 'requests to all three instances',
      });
      const report = await check.stop();
      assertClean(report);
      assert.equal(report.readsOld, 0);
    } finally {
      assert.equal(await late.stop(), 0, late.logs().slice(-2000));
    }
  });

  it('exports its spans over OTLP/HTTP: every phase transition and the HTTP server spans, and exits 0 on SIGTERM', async () => {
    const codes = await Promise.all(services.map((s) => s.stop())); // the SDK flushes on shutdown
    assert.deepEqual(codes, [0, 0], services.map((s) => s.logs().slice(-2000)).join('\n'));
    const transitions = otlp.spans.filter((s) => s.name === 'phaseflag.transition');
    for (const id of IDS) {
      const reached = new Set(
        transitions
          .filter((s) => s.attributes['phaseflag.migration.id'] === id)
          .map((s) => s.attributes['phaseflag.phase.to']),
      );
      for (const phase of [
        'expanded',
        'dual-write',
        'backfilling',
        'backfilled',
        'verified',
        'read-new',
        'contracted',
      ]) {
        assert.ok(
          reached.has(phase),
          `${id}: a phaseflag.transition span to ${phase} (got ${[...reached].join(', ')})`,
        );
      }
    }
    assert.ok(transitions.every((s) => s.serviceName === 'orders-service'));
    assert.ok(
      otlp.spans.some((s) => s.name === 'phaseflag.transition.refused'),
      'the refusal is a span too',
    );
    const server = otlp.spans.filter((s) => s.kind === 2 && s.attributes['http.route'] !== undefined);
    assert.ok(
      server.some((s) => s.attributes['http.route'] === '/orders/:id'),
      `HTTP server spans with routes (got ${new Set(otlp.spans.map((s) => s.name)).size} span names)`,
    );
    assert.ok(
      otlp.spans.some((s) => s.kind === 3 && s.attributes['db.system'] === 'postgresql'),
      'pg client spans under the requests',
    );
    assert.deepEqual(otlp.rejected, []);
    services = [];
  });
});
