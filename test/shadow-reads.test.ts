import assert from 'node:assert/strict';
import { trace } from '@opentelemetry/api';
import { ATTR, METRIC, SHADOW_EVENT, defineMigration, type FlagSource } from '@phaseflag/core';
import { Phaseflag, type Controller, type ControllerEvent, type KnexRouter } from '@phaseflag/postgres';
import { provisionFlags } from '@phaseflag/unleash';
import {
  amountInput,
  captureMetrics,
  captureSpans,
  createAmountTable,
  createSuiteSchema,
  startUnleash,
  waitFor,
  type Suite,
  type UnleashServer,
} from '@phaseflag/testkit';
import { createUnleashSource } from './fixtures/unleash-source.js';

/**
 * Shadow reads between verified and read-new, on a real Postgres and a real unleash-server: a service's router with
 * the shadow flag on compares the two columns beside its reads (counted as metrics, span events and per instance in
 * `status`); a writer that changes the new column behind the router's back (the sync trigger bypassed) is seen,
 * and read-new is refused with the row named, by flag through the controller and by hand; after repair, enough
 * matching reads let the controller move reads.
 */
describe('shadow reads: compared beside live reads, and read-new waits for them', function () {
  this.timeout(240_000);
  const spans = captureSpans();
  const metrics = captureMetrics();
  const ENV = 'development';
  const id = 'shadow-e2e';
  const table = 'orders_shadow';
  const m = defineMigration(amountInput(id, table, { shadow: { minCompared: 500 } }));
  let suite: Suite;
  let unleash: UnleashServer;
  let pf: Phaseflag;
  let flags: { source: FlagSource; close: () => Promise<void> };
  let router: KnexRouter;
  let controller: Controller | undefined;
  const events: ControllerEvent[] = [];

  before(async () => {
    suite = await createSuiteSchema('shadow_reads');
    unleash = await startUnleash();
    pf = new Phaseflag({ knex: suite.knex, stateSchema: suite.stateSchema, pollIntervalMs: 200, graceMs: 0 });
    await pf.install();
    await createAmountTable(suite.knex, table, 2000);
    const report = await provisionFlags(m, { url: unleash.url, token: unleash.adminToken, environment: ENV });
    assert.ok(report.created.includes(`${id}.shadow`), 'the shadow flag is provisioned with the others');
    flags = await createUnleashSource({
      url: unleash.url,
      token: unleash.clientToken,
      appName: 'phaseflag-shadow',
      instanceId: 'shadow-svc',
      refreshIntervalMs: 300,
    });
    const h = pf.migration(m);
    await h.expand();
    await h.startDualWrite();
    await h.backfill();
    await h.verify();
    router = await h.router(flags.source, { instanceId: 'svc-a', heartbeatMs: 200 });
    // The controller sees dual-write on (it stays on until contract) and acts on read-new only.
    await unleash.admin.enable(m.flags.dualWrite, ENV);
  });
  after(async () => {
    await controller?.stop();
    await router?.close();
    await flags?.close();
    await unleash?.stop();
    await pf?.close();
    await suite?.cleanup();
  });

  const status = () => pf.migration(m).status();
  const read = (from: number, to: number) =>
    trace.getTracer('test').startActiveSpan('read', async (span) => {
      try {
        return await suite.knex(table).select('id', router.select()).whereBetween('id', [from, to]).orderBy('id');
      } finally {
        span.end();
      }
    });
  const startController = async () => {
    controller = pf.controller(m, {
      flags: flags.source,
      intervalMs: 300,
      instanceId: 'ctl-shadow',
      onEvent: (e) => events.push(e),
    });
    await controller.start();
  };

  it('reads answer from the old column and compare; counts are metrics, span events and status per instance', async () => {
    const before = await read(1, 10);
    assert.equal(Object.keys(before[0]).length, 2, 'shadow flag off: no comparison');
    await unleash.admin.enable(m.shadow!.flag, ENV);
    await waitFor(() => router.core.shadows(), { timeoutMs: 20_000, description: 'the shadow flag on' });
    await metrics.reset();
    spans.reset();

    const rows = await read(1, 300);
    assert.equal(rows.length, 300);
    assert.deepEqual(Object.keys(rows[0]), ['id', 'amount'], 'the comparison is taken off the rows');
    assert.equal(rows[41]!.amount, '15.54', 'the answer is the old column derived, as in any verified read');

    const span = spans.byName('read')[0]!;
    const event = span.events.find((e) => e.name === SHADOW_EVENT);
    assert.ok(event, 'a span event on the read span');
    assert.equal(event.attributes?.[ATTR.shadowCompared], 300);
    assert.equal(event.attributes?.[ATTR.shadowMismatched], 0);
    assert.equal(await metrics.sum(METRIC.shadowCompared, { [ATTR.migrationId]: id }), 300);
    assert.equal(await metrics.sum(METRIC.shadowMismatched, { [ATTR.migrationId]: id }), 0);

    await waitFor(async () => (await status()).shadow?.compared === 300, { timeoutMs: 10_000, description: 'report' });
    const s = (await status()).shadow!;
    assert.equal(s.active, true);
    assert.deepEqual(
      s.instances.map((i) => [i.instanceId, i.compared, i.mismatched]),
      [['svc-a', 300, 0]],
    );
    assert.equal(s.readNewAllowed, false, '300 of the 500 needed');
    assert.match(s.reason ?? '', /not compared enough rows .*at least 500/);
  });

  it('refuses read-new by flag while too few rows were compared', async () => {
    await startController();
    await unleash.admin.enable(m.flags.readNew, ENV);
    await waitFor(() => events.some((e) => e.kind === 'refused' && /not compared enough/.test(e.reason)), {
      timeoutMs: 20_000,
      description: 'the refusal for too few compared rows',
    });
    assert.equal((await status()).phase, 'verified');
  });

  it('sees a row written behind the router, and refuses read-new naming it, by flag and by hand', async () => {
    // A writer that bypasses the sync trigger (as a restore or a replica-role session would).
    await suite.knex.transaction(async (trx) => {
      await trx.raw('SET LOCAL session_replication_role = replica');
      await trx.raw('UPDATE ?? SET amount = 99 WHERE id = 42', [table]);
    });
    spans.reset();
    const rows = await read(1, 300);
    assert.equal(rows[41]!.amount, '15.54', 'still answered from the old column');
    const event = spans.byName('read')[0]!.events.find((e) => e.name === SHADOW_EVENT)!;
    assert.equal(event.attributes?.[ATTR.shadowMismatched], 1);
    assert.deepEqual(event.attributes?.[ATTR.shadowMismatchKeys], ['[42]']);
    assert.equal(await metrics.sum(METRIC.shadowMismatched, { [ATTR.migrationId]: id }), 1);

    const named = /key \[42\], old value "1554", new value "99\.00"/;
    await waitFor(() => events.some((e) => e.kind === 'refused' && named.test(e.reason)), {
      timeoutMs: 20_000,
      description: 'the controller refusal naming the mismatch',
    });
    const s = (await status()).shadow!;
    assert.deepEqual([s.compared, s.mismatched], [600, 1]);
    assert.deepEqual(
      s.mismatches.map((x) => [x.key, x.old, x.new, x.instanceId]),
      [[[42], '1554', '99.00', 'svc-a']],
    );
    assert.match(s.reason ?? '', named);
    const logged = (await status()).events.filter((e) => e.kind === 'refused' && named.test(e.reason ?? ''));
    assert.ok(logged.length >= 1, 'the refusal is in the event log');
    assert.ok(
      spans.byName('phaseflag.transition.refused').some((x) => named.test(String(x.attributes[ATTR.reason]))),
      'and a refusal span',
    );

    await assert.rejects(
      pf.migration(m).readNew(),
      (e: { code?: string; message?: string }) => e.code === 'PF_GUARD_REFUSED' && named.test(e.message ?? ''),
    );
    assert.equal((await status()).phase, 'verified');
  });

  it('after repair, enough matching reads let the controller move reads to the new column', async () => {
    await controller!.stop();
    controller = undefined;
    const r = await pf.migration(m).repair();
    assert.equal(r.rowsRepaired, 1);
    assert.equal(r.verify?.clean, true);
    const fresh = (await status()).shadow!;
    assert.deepEqual([fresh.active, fresh.compared, fresh.mismatched], [true, 0, 0], 'a new verified counts afresh');

    await startController();
    for (let from = 1; from <= 600; from += 200) await read(from, from + 199);
    await waitFor(async () => (await status()).phase === 'read-new', {
      timeoutMs: 30_000,
      description: 'read-new once 500 rows matched',
    });
    const rows = await read(1, 300);
    assert.deepEqual(Object.keys(rows[0]), ['id', 'amount'], 'no comparison outside verified');
    assert.equal(rows[41]!.amount, '15.54');
  });
});
