import assert from 'node:assert/strict';
import { SPAN, StaticFlagSource, defineMigration } from '@phaseflag/core';
import { amountInput, createAmountTable, waitFor, wrongAmountRows } from '@phaseflag/testkit';
import { CountingFlagSource, useControllerSuite } from './fixtures/controller-suite.js';
import { internalsOf } from '../src/internal.js';

/** What the controller refuses to do on a flag alone: read-new before verified, a backfill while an instance lags. */
describe('the controller: a flag is a request, the database has the last word', function () {
  this.timeout(120_000);
  const t = useControllerSuite('controller_guards');
  const { spans, logs, cleanups, controller, phaseOf, waitPhase } = t;

  it('refuses a read-new flag turned on too early once (one event, one log line), and routers keep reading old', async () => {
    const { suite, pf } = t;
    const table = 'orders_early';
    await createAmountTable(suite.knex, table, 2000);
    const m = defineMigration(amountInput('early', table));
    const flags = new CountingFlagSource({
      'early.dual-write': true,
      'early.backfill': false,
      'early.read-new': false,
      'early.contract': false,
    });
    const router = await pf.migration(m).router(flags, { heartbeatMs: 0 });
    cleanups.push(() => router.close());
    const c = controller(m, flags);
    await c.start();
    await waitPhase('early', 'dual-write');
    spans.reset();
    logs.length = 0;

    flags.set('early.read-new', true);
    for (let i = 0; i < 10; i++) await c.reconcile();
    await flags.passes(3); // and a few periodic passes

    const refused = (await pf.migration(m).status()).events.filter((e) => e.kind === 'refused');
    assert.equal(refused.length, 1, JSON.stringify(refused));
    assert.equal(refused[0]!.action, 'read-new');
    assert.match(refused[0]!.reason!, /not verified/);
    assert.equal(
      logs.filter((l) => /read-new refused/.test(l.message)).length,
      1,
      'logged once, not on every reconcile',
    );
    const span = spans.byName(SPAN.refused).filter((s) => s.attributes['phaseflag.migration.id'] === 'early');
    assert.equal(span.length, 1);
    assert.equal(span[0]!.attributes['feature_flag.key'], 'early.read-new');
    assert.equal(span[0]!.attributes['feature_flag.result.value'], true);
    assert.match(String(span[0]!.attributes['phaseflag.reason']), /not verified/);
    assert.equal(
      router.column({ userId: '7' }),
      'amount_cents',
      'the flag is on, the database says no: reads stay old',
    );
    assert.equal(await phaseOf('early'), 'dual-write');

    // Something changes (the flag goes off and on again): that is news, recorded once more.
    flags.set('early.read-new', false);
    await c.reconcile();
    flags.set('early.read-new', true);
    for (let i = 0; i < 5; i++) await c.reconcile();
    assert.equal((await pf.migration(m).status()).events.filter((e) => e.kind === 'refused').length, 2);
  });

  it('never trusts a flag alone: read-new on at start-up moves reads only once the database says verified', async () => {
    const { suite, pf } = t;
    const table = 'orders_stale';
    await createAmountTable(suite.knex, table, 5000);
    const m = defineMigration(amountInput('stale', table, { batch: { size: 500, targetBatchMs: 0, pauseMs: 20 } }));
    // A stale backup or bootstrap: every flag but contract already on when the service starts.
    const flags = new StaticFlagSource({
      'stale.dual-write': true,
      'stale.backfill': true,
      'stale.read-new': true,
      'stale.contract': false,
    });
    const router = await pf.migration(m).router(flags, { heartbeatMs: 0 });
    cleanups.push(() => router.close());
    const seen: Array<[string, string | null]> = [];
    const sampler = setInterval(() => seen.push([router.core.currentPhase, router.column({ userId: '3' })]), 5);
    cleanups.push(async () => clearInterval(sampler));
    const c = controller(m, flags);
    await c.start();
    await waitPhase('stale', 'read-new');
    await waitFor(() => router.column({ userId: '3' }) === 'amount', {
      timeoutMs: 2000,
      description: 'the router to apply read-new',
    });
    clearInterval(sampler);

    const early = seen.filter(([phase]) => !['verified', 'read-new'].includes(phase));
    assert.ok(early.length > 5, `sampled before verified (${early.length})`);
    assert.ok(
      early.every(([, col]) => col === 'amount_cents'),
      'never read the new column before verified',
    );
    const refused = (await pf.migration(m).status()).events.filter(
      (e) => e.kind === 'refused' && e.action === 'read-new',
    );
    assert.ok(
      refused.length >= 1 && refused.length <= 4,
      `refused while the database was not there yet, once per phase at most (${refused.length})`,
    );
    assert.equal(await wrongAmountRows(suite.knex, table), 0);
  });

  it('holds the backfill for an instance that does not write both columns (trigger off) until it catches up or its heartbeat expires', async () => {
    const { suite, pf } = t;
    const table = 'orders_fleet';
    await createAmountTable(suite.knex, table, 2000);
    const m = defineMigration(amountInput('fleet', table, { sync: { trigger: false } }));
    const flags = new StaticFlagSource({
      'fleet.dual-write': true,
      'fleet.backfill': false,
      'fleet.read-new': false,
      'fleet.contract': false,
    });
    const router = await pf.migration(m).router(flags, { heartbeatMs: 100, instanceId: 'app-current' });
    cleanups.push(() => router.close());
    const c = controller(m, flags);
    await c.start();
    await waitPhase('fleet', 'dual-write');
    // An instance that has not heard of dual-write yet: it writes the old column only.
    const lagging = (phase: 'expanded' | 'dual-write') =>
      internalsOf(pf).store.heartbeat({
        instanceId: 'app-lagging',
        migrationId: 'fleet',
        phase,
        writesOld: true,
        writesNew: phase === 'dual-write',
        readsOld: true,
        readsNew: false,
      });
    // It keeps reporting (as a live instance does) so that it cannot expire (TTL 1.5 s) while the test looks.
    let laggingPhase: 'expanded' | 'dual-write' = 'expanded';
    await lagging(laggingPhase);
    const beat = setInterval(() => void lagging(laggingPhase).catch(() => undefined), 200);
    cleanups.push(async () => clearInterval(beat));
    logs.length = 0;

    flags.set('fleet.backfill', true);
    for (let i = 0; i < 5; i++) await c.reconcile();
    assert.equal(await phaseOf('fleet'), 'dual-write', 'the backfill waits');
    const refused = (await pf.migration(m).status()).events.filter((e) => e.kind === 'refused');
    assert.equal(refused.length, 1);
    assert.match(refused[0]!.reason!, /app-lagging/);
    assert.doesNotMatch(refused[0]!.reason!, /app-current/);

    // It catches up: the backfill starts at the next pass.
    laggingPhase = 'dual-write';
    await lagging(laggingPhase);
    await waitPhase('fleet', 'verified');
    assert.equal(await wrongAmountRows(suite.knex, table), 0);

    // Second round on another migration: the lagging instance never catches up; its heartbeat expires (TTL 1.5 s).
    const table2 = 'orders_fleet2';
    await createAmountTable(suite.knex, table2, 1000);
    const m2 = defineMigration(amountInput('fleet2', table2, { sync: { trigger: false } }));
    const flags2 = new StaticFlagSource({
      'fleet2.dual-write': true,
      'fleet2.backfill': true,
      'fleet2.read-new': false,
      'fleet2.contract': false,
    });
    const router2 = await pf.migration(m2).router(flags2, { heartbeatMs: 100, instanceId: 'app2-current' });
    cleanups.push(() => router2.close());
    await internalsOf(pf).store.heartbeat({
      instanceId: 'app2-gone',
      migrationId: 'fleet2',
      phase: 'expanded',
      writesOld: true,
      writesNew: false,
      readsOld: true,
      readsNew: false,
    });
    const c2 = controller(m2, flags2);
    const started = Date.now();
    await c2.start();
    await waitPhase('fleet2', 'verified', 15_000);
    assert.ok(Date.now() - started >= 1000, 'waited for the TTL');
    const status = c2.status()[0]!;
    assert.deepEqual(
      status.staleInstances.map((i) => i.instanceId),
      ['app2-gone'],
      'reported in status',
    );
    assert.equal(
      logs.filter((l) => /app2-gone .*older than the 1500 ms TTL/.test(l.message)).length,
      1,
      'and one log line',
    );
  });
});
