import assert from 'node:assert/strict';
import { CONTROLLER_SPAN, SPAN, StaticFlagSource, defineMigration } from '@phaseflag/core';
import { amountInput, createAmountTable, holdsFor, startLoad, waitFor, wrongAmountRows } from '@phaseflag/testkit';
import { Phaseflag } from '../src/index.js';
import { internalsOf } from '../src/internal.js';
import { linksTo, trafficOps, useControllerSuite } from './fixtures/controller-suite.js';

describe('the controller: flags drive the phases, Postgres decides', function () {
  this.timeout(120_000);
  const t = useControllerSuite('controller');
  const { spans, logger, cleanups, controller, phaseOf, waitPhase } = t;

  it('walks the whole life cycle from flag changes alone, under traffic, and links every transition to its cause', async () => {
    const { suite, pf } = t;
    const table = 'orders_life';
    const rows = 20_000;
    await createAmountTable(suite.knex, table, rows);
    const m = defineMigration(amountInput('life', table));
    const flags = new StaticFlagSource({
      'life.dual-write': false,
      'life.backfill': false,
      'life.read-new': false,
      'life.contract': false,
    });
    const router = await pf.migration(m).router(flags, { heartbeatMs: 100, instanceId: 'app-1' });
    cleanups.push(() => router.close());
    const app = suite.newKnex({ pool: { min: 0, max: 4 } });
    const load = startLoad({ knex: app, concurrency: 3, ops: trafficOps(router, table, rows) });
    cleanups.push(() => load.stop());
    spans.reset();
    const c = controller(m, flags, { dropOldColumn: true });
    await c.start();
    assert.equal(c.isLeader('life'), true);
    assert.equal(await phaseOf('life'), 'pending', 'no flag on: nothing happens');

    flags.set('life.dual-write', true);
    await waitPhase('life', 'dual-write');
    flags.set('life.backfill', true);
    await waitPhase('life', 'verified'); // the backfill runs in the background, verify follows by itself
    assert.equal(router.column({ userId: '1' }), 'amount_cents', 'read-new off: reads stay old after verify');
    flags.set('life.read-new', true);
    await waitPhase('life', 'read-new');
    // The router hears of the phase through NOTIFY (or its poll), a moment after the database has it.
    await waitFor(() => router.column({ userId: '1' }) === 'amount', {
      timeoutMs: 2000,
      description: 'the router to apply read-new',
    });
    flags.set('life.contract', true);
    await waitPhase('life', 'contracted');
    const report = await load.stop();
    await c.stop();

    assert.equal(report.errors, 0, JSON.stringify(report.errorSamples.slice(0, 3)));
    assert.ok(report.ops > 100, `traffic ran throughout (${report.ops} ops)`);
    assert.equal(
      (
        await suite.knex.raw(
          "SELECT count(*)::int AS n FROM information_schema.columns WHERE table_schema = ? AND table_name = ? AND column_name = 'amount_cents'",
          [suite.schema, table],
        )
      ).rows[0].n,
      0,
      'dropOldColumn',
    );
    assert.equal(
      (await suite.knex.raw('SELECT count(*)::int AS n FROM ?? WHERE amount IS NULL', [table])).rows[0].n,
      0,
    );

    const events = (await pf.migration(m).status()).events.filter((e) => e.kind === 'transition');
    assert.deepEqual(
      events.map((e) => e.toPhase),
      ['expanded', 'dual-write', 'backfilling', 'backfilled', 'verified', 'read-new', 'contracted'],
    );
    assert.equal(
      events.find((e) => e.action === 'backfill')?.detail?.flag,
      'life.backfill',
      'each event names the flag that caused it',
    );

    const leader = spans.byName(CONTROLLER_SPAN.leader).find((s) => s.attributes['phaseflag.migration.id'] === 'life');
    assert.ok(leader, 'the leadership is a span');
    const changes = spans
      .byName(CONTROLLER_SPAN.flagChange)
      .filter((s) => s.attributes['phaseflag.migration.id'] === 'life');
    const transitions = spans.byName(SPAN.transition).filter((s) => s.attributes['phaseflag.migration.id'] === 'life');
    assert.equal(transitions.length, 7, transitions.map((s) => s.attributes['phaseflag.action']).join(', '));
    for (const t of transitions)
      assert.ok(linksTo(t, leader), `${String(t.attributes['phaseflag.action'])} links to the leader span`);
    const byFlag = (key: string, value: boolean) =>
      changes.find(
        (s) => s.attributes['feature_flag.key'] === key && s.attributes['feature_flag.result.value'] === value,
      );
    const expectCause: Array<[string, string]> = [
      ['expand', 'life.dual-write'],
      ['dual-write', 'life.dual-write'],
      ['backfill', 'life.backfill'],
      ['read-new', 'life.read-new'],
      ['contract', 'life.contract'],
    ];
    for (const [action, key] of expectCause) {
      const t = transitions.find((s) => s.attributes['phaseflag.action'] === action)!;
      assert.ok(linksTo(t, byFlag(key, true)), `${action} links to the change of ${key}`);
      assert.equal(t.attributes['feature_flag.key'], key);
      assert.equal(t.attributes['feature_flag.result.value'], true);
      assert.equal(t.attributes['feature_flag.provider.name'], 'static');
    }
    for (const s of changes) {
      assert.equal(s.attributes['feature_flag.provider.name'], 'static');
      assert.ok(!('feature_flag.provider_name' in s.attributes) && !('feature_flag.variant' in s.attributes));
    }
  });

  it('pauses the backfill when its flag goes off and resumes it from the checkpoint when it comes back', async () => {
    const { suite, pf } = t;
    const table = 'orders_pause';
    const rows = 30_000;
    await createAmountTable(suite.knex, table, rows);
    const m = defineMigration(amountInput('pause', table, { batch: { size: 500, targetBatchMs: 0, pauseMs: 15 } }));
    const flags = new StaticFlagSource({
      'pause.dual-write': true,
      'pause.backfill': true,
      'pause.read-new': false,
      'pause.contract': false,
    });
    const c = controller(m, flags);
    const done = async () =>
      Number(
        (
          await suite.knex.raw(
            'SELECT coalesce(sum(rows_done), 0)::int AS n FROM ??.backfill_ranges WHERE migration_id = ?',
            [suite.stateSchema, 'pause'],
          )
        ).rows[0].n,
      );
    await c.start();
    await waitFor(async () => (await done()) >= 3000, { timeoutMs: 30_000, description: 'some batches' });

    flags.set('pause.backfill', false);
    await waitPhase('pause', 'paused', 5000);
    await waitFor(() => c.status()[0]!.backfillRunning === false, {
      description: 'the runner to stop after its batch',
    });
    const atPause = await done();
    assert.ok(atPause < rows, `paused midway (${atPause})`);
    await holdsFor(async () => (await done()) === atPause, 400, { description: 'nothing moves while paused' });
    assert.equal(await done(), atPause, 'nothing moves while paused');

    spans.reset();
    flags.set('pause.backfill', true);
    await waitPhase('pause', 'verified');
    assert.equal(await done(), rows, 'every row once: the resumed run started at the checkpoint');
    assert.equal(await wrongAmountRows(suite.knex, table), 0);
    const actions = (await pf.migration(m).status()).events.filter((e) => e.kind === 'transition').map((e) => e.action);
    assert.deepEqual(actions.slice(2), ['backfill', 'pause', 'resume', 'complete-backfill', 'verify']);
    const resume = spans.byName(SPAN.transition).find((s) => s.attributes['phaseflag.action'] === 'resume');
    assert.equal(resume?.attributes['feature_flag.key'], 'pause.backfill');
  });

  it('lets exactly one of two controllers lead, and the other take over when the leader stops', async () => {
    const { suite, pf } = t;
    const table = 'orders_two';
    await createAmountTable(suite.knex, table, 1000);
    const m = defineMigration(amountInput('two', table));
    const flags = new StaticFlagSource({
      'two.dual-write': false,
      'two.backfill': false,
      'two.read-new': false,
      'two.contract': false,
    });
    const other = new Phaseflag({
      knex: suite.newKnex({ pool: { min: 0, max: 5 } }),
      stateSchema: suite.stateSchema,
      pollIntervalMs: 100,
      graceMs: 200,
      logger,
    });
    cleanups.push(() => other.close());
    const a = controller(m, flags, { instanceId: 'ctl-a' });
    const b = controller(m, flags, { instanceId: 'ctl-b' }, other);
    await Promise.all([a.start(), b.start()]);
    await Promise.all([a.reconcile(), b.reconcile()]);
    assert.deepEqual([a.isLeader('two'), b.isLeader('two')].sort(), [false, true], 'one leader');
    const [leader, follower] = a.isLeader('two') ? [a, b] : [b, a];
    assert.match((await follower.leaderOf('two'))?.applicationName ?? '', new RegExp(leader.instanceId));

    flags.set('two.dual-write', true);
    await waitPhase('two', 'dual-write');
    const actors = (await pf.migration(m).status()).events
      .filter((e) => e.kind === 'transition')
      .map((e) => e.detail?.controller);
    assert.deepEqual([...new Set(actors)], [leader.instanceId], 'only the leader acted');

    await leader.stop();
    await waitFor(() => follower.isLeader('two'), { timeoutMs: 5000, description: 'the follower to take over' });
    flags.set('two.backfill', true);
    await waitPhase('two', 'verified');
    const last = (await pf.migration(m).status()).events.filter((e) => e.kind === 'transition').pop()!;
    assert.equal(last.detail?.controller, follower.instanceId);
  });

  it('moves nothing while the flags are unknown, and moves as soon as they are known', async () => {
    const { suite, pf } = t;
    const table = 'orders_unknown';
    await createAmountTable(suite.knex, table, 500);
    const m = defineMigration(amountInput('unknown', table));
    const flags = new StaticFlagSource(); // a source that has not answered yet
    const c = controller(m, flags);
    await c.start();
    for (let i = 0; i < 3; i++) await c.reconcile();
    const status = c.status()[0]!;
    assert.equal(status.leader, true);
    assert.deepEqual(status.lastStep, { kind: 'none', why: 'the dual-write flag is unknown', unknown: ['dualWrite'] });
    assert.equal(await phaseOf('unknown'), 'pending');
    assert.equal((await pf.migration(m).status()).events.length, 0, 'nothing recorded: unknown is not a refusal');
    flags.set('unknown.dual-write', true);
    await waitPhase('unknown', 'dual-write');
  });

  it('does not take a verify cut short (a controller stopping) for a failed one', async () => {
    const { suite, pf } = t;
    const table = 'orders_cut';
    await createAmountTable(suite.knex, table, 500);
    const m = pf.migration(defineMigration(amountInput('cut', table)));
    await m.expand();
    await m.startDualWrite();
    await m.backfill();
    const stopped = new AbortController();
    stopped.abort();
    await assert.rejects(m.verify({ signal: stopped.signal }), (e: Error) => e.name === 'AbortError');
    const row = (await internalsOf(pf).store.get('cut'))!;
    assert.deepEqual(
      [row.phase, row.verify_result],
      ['backfilled', null],
      'no verdict recorded: a controller verifies again',
    );
    assert.match((await m.status()).events.at(-1)!.reason!, /aborted after 0 rows/);
    await m.verify();
    assert.equal((await internalsOf(pf).store.get('cut'))!.phase, 'verified');
  });
});
