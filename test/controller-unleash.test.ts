import assert from 'node:assert/strict';
import { defineMigration } from '@phaseflag/core';
import type { Phaseflag } from '@phaseflag/postgres';
import { internalsOf } from '@phaseflag/postgres/internal';
import { amountInput, holdsFor, waitFor, wrongAmountRows, type Suite, type UnleashServer } from '@phaseflag/testkit';
import type { ServiceProcess } from './fixtures/service-process.js';
import { ENV, NEW, OLD, REFRESH_MS, USERS, unleashFleet } from './fixtures/unleash-fleet.js';

/**
 * End to end: a real unleash-server, flags changed only through its Admin API (as an operator in the UI), and two
 * service instances in two processes, each with knex, a KnexRouter, an UnleashFlagSource (1 s refresh), a
 * Controller and continuous reads and writes. The suite's `it`s are consecutive stages of one migration.
 */
describe('Unleash drives a migration across two service processes', function () {
  this.timeout(300_000);
  const id = 'e2e-amount';
  const table = 'orders_e2e';
  const input = amountInput(id, table, { batch: { size: 1000, targetBatchMs: 0, pauseMs: 5 } });
  const names = defineMigration(input).flags;
  const fleet = unleashFleet(input, table);
  const { untilEvery, expectedColumns, untilColumns } = fleet;
  let suite: Suite;
  let unleash: UnleashServer;
  let pf: Phaseflag;
  let readNewStrategy: string;
  let services: ServiceProcess[] = [];

  before(async () => {
    await fleet.start();
    ({ suite, unleash, pf, readNewStrategy, services } = fleet);
  });

  after(async () => {
    // The last stage stops the services itself (and empties the list): what is left here is what a failure left.
    await fleet.stop(services);
  });

  const events = async (kind: string) => (await pf.migration(input).status()).events.filter((e) => e.kind === kind);
  const phase = async () => (await internalsOf(pf).store.get(id))?.phase;

  it('moves to dual-write and through the backfill as the operator turns flags on, refusing read-new turned on too early', async () => {
    let t0 = Date.now();
    await unleash.admin.enable(names.dualWrite, ENV);
    await untilEvery(
      'dual-write flag on → phase dual-write in every instance',
      t0,
      (m) => m.type === 'phase' && m.phase === 'dual-write',
    );

    // Read-new switched on (at its provisioned 0%) long before the column is filled: refused once, reads stay old.
    await unleash.admin.setRollout(names.readNew, ENV, readNewStrategy, 100);
    await unleash.admin.enable(names.readNew, ENV);
    await waitFor(async () => (await events('refused')).length > 0, { timeoutMs: 20_000, description: 'the refusal' });
    // Three more polls and reconciles: still one refusal.
    await holdsFor(async () => (await events('refused')).length === 1, 3 * REFRESH_MS, {
      intervalMs: 200,
      description: 'one refusal',
    });
    const refused = await events('refused');
    assert.equal(refused.length, 1, JSON.stringify(refused));
    assert.equal(refused[0]!.action, 'read-new');
    assert.equal(
      services.flatMap((s) => s.logs().filter((l) => /read-new refused/.test(l))).length,
      1,
      'one log line across the fleet',
    );
    for (const s of services)
      assert.ok(
        Object.values(await s.columns(USERS)).every((c) => c === OLD),
        `${s.instanceId} reads old`,
      );
    assert.equal(await phase(), 'dual-write');
    await unleash.admin.disable(names.readNew, ENV);
    await unleash.admin.setRollout(names.readNew, ENV, readNewStrategy, 0);

    t0 = Date.now();
    await unleash.admin.enable(names.backfill, ENV);
    await untilEvery(
      'backfill flag on → phase backfilling in every instance',
      t0,
      (m) => m.type === 'phase' && m.phase === 'backfilling',
    );
    await untilEvery(
      '… then backfilled and verified without any flag',
      t0,
      (m) => m.type === 'phase' && m.phase === 'verified',
      60_000,
    );
    for (const s of services) {
      const r = await s.report();
      assert.equal(r.errors, 0, `${s.instanceId}: ${r.errorSamples.join('; ')}`);
    }
  });

  it('rolls read-new out to 50% of users, then back to 0%, each user on the right column in both instances', async () => {
    await unleash.admin.setRollout(names.readNew, ENV, readNewStrategy, 50);
    let t0 = Date.now();
    await unleash.admin.enable(names.readNew, ENV);
    await untilEvery(
      'read-new flag on → phase read-new in every instance',
      t0,
      (m) => m.type === 'phase' && m.phase === 'read-new',
    );
    const half = await expectedColumns(50);
    const share = Object.values(half).filter((c) => c === NEW).length / USERS.length;
    assert.ok(share > 0.3 && share < 0.7, `about half the users read the new column (${share})`);
    await untilColumns('read-new 0% → 50%: every instance routes each user right', t0, half);

    t0 = Date.now();
    await unleash.admin.setRollout(names.readNew, ENV, readNewStrategy, 0);
    await untilColumns('read-new 50% → 0%: every user back on the old column', t0, await expectedColumns(0));
    for (const s of services) assert.ok(Object.values(await s.columns(USERS)).every((c) => c === OLD));
    assert.equal(await phase(), 'read-new', 'a 0% rollout moves reads, not the phase');
  });

  it('keeps serving safely while Unleash is down (reads old once flags are unknown, writes both) and catches up when it returns', async () => {
    const t0 = Date.now();
    await unleash.admin.setRollout(names.readNew, ENV, readNewStrategy, 50);
    await untilColumns('read-new 0% → 50% (before the outage)', t0, await expectedColumns(50));
    const before = await Promise.all(services.map((s) => s.report()));
    const transitionsBefore = (await events('transition')).length;

    let outage = 0;
    // Timed from the start of the stop (the last answers came before it), not from whenever the halt returns.
    const stopping = Date.now();
    await unleash.restart({
      whileDown: async () => {
        // Each source says "unknown" once its data is older than 3 refresh intervals: every request reads old.
        outage = await untilColumns(
          'Unleash down → every instance reads old (flags unknown)',
          stopping,
          Object.fromEntries(USERS.map((u) => [u, OLD])),
        );
        // A while into the outage: traffic goes on, and nothing moves.
        await holdsFor(async () => (await events('transition')).length === transitionsBefore, 1500, {
          intervalMs: 100,
          description: 'no transition on unknown flags',
        });
        const during = await Promise.all(services.map((s) => s.report()));
        during.forEach((r, i) => {
          assert.equal(r.errors, 0, r.errorSamples.join('; '));
          assert.ok(r.ops > before[i]!.ops + 50, 'traffic goes on');
          assert.equal(r.phase, 'read-new', 'the phase, and with it writes to both columns, stays');
        });
        assert.equal((await events('transition')).length, transitionsBefore, 'nothing moves on unknown flags');
      },
    });
    assert.ok(outage >= 2 * REFRESH_MS, `reads stayed on the last known flags for a while (${outage} ms)`);
    const back = Date.now();
    await untilColumns('Unleash back → every instance routes each user as before', back, await expectedColumns(50));
    assert.equal(await wrongAmountRows(suite.knex, table), 0, 'both columns stayed right through the outage');
  });

  it('pulls the emergency lever: read-old sends every read of both processes back while the flag stays on, until read-new is asked for again', async () => {
    const everyone = (column: string) => Object.fromEntries(USERS.map((u) => [u, column]));
    let t0 = Date.now();
    await unleash.admin.setRollout(names.readNew, ENV, readNewStrategy, 100);
    await untilColumns('read-new 50% → 100% (before the lever)', t0, await expectedColumns(100));
    const before = await Promise.all(services.map((s) => s.report()));
    const refusedBefore = (await events('refused')).length;

    // `phaseflag read-old` from an operator's shell: the flag in Unleash stays on at 100%.
    t0 = Date.now();
    await pf.migration(input).readOld();
    const lever = await untilColumns('read-old (flag still on) → every instance reads old', t0, everyone(OLD));
    assert.ok(lever < 2000, `the lever takes effect through NOTIFY, not the flag poll (${lever} ms)`);
    assert.ok((await internalsOf(pf).store.get(id))!.reads_held_at instanceof Date, 'read-old holds reads');
    // The controllers poll and reconcile, the flag still on: the phase stays.
    await holdsFor(async () => (await phase()) === 'verified', 3 * REFRESH_MS, {
      intervalMs: 200,
      description: 'verified while the hold stands',
    });
    assert.equal(await phase(), 'verified', 'the controllers do not move back to read-new while the hold stands');
    for (const s of services)
      assert.deepEqual(await s.columns(USERS), everyone(OLD), `${s.instanceId} still reads old`);
    const held = (await events('refused')).slice(refusedBefore);
    assert.equal(held.length, 1, `refused once across the fleet: ${JSON.stringify(held)}`);
    assert.equal(held[0]!.action, 'read-new');
    assert.match(held[0]!.reason!, /read-old/);

    // Reads move again only when read-new is asked for again: the flag off (the hold is released) and on.
    await unleash.admin.disable(names.readNew, ENV);
    await waitFor(async () => (await internalsOf(pf).store.get(id))!.reads_held_at === null, {
      timeoutMs: 20_000,
      description: 'the hold to be released',
    });
    assert.equal(await phase(), 'verified');
    t0 = Date.now();
    await unleash.admin.enable(names.readNew, ENV);
    await untilEvery(
      'read-new flag off and on again → phase read-new in every instance',
      t0,
      (m) => m.type === 'phase' && m.phase === 'read-new',
    );
    await untilColumns('… and every instance reads new again', t0, everyone(NEW));
    const after = await Promise.all(services.map((s) => s.report()));
    after.forEach((r, i) => {
      assert.equal(r.errors, 0, r.errorSamples.join('; '));
      assert.ok(r.reads > before[i]!.reads + 50, 'reads went on throughout');
    });
    assert.equal(await wrongAmountRows(suite.knex, table), 0);
  });

  it('contracts once read-new is fully on and no instance reads the old column: no failed request, every row right', async () => {
    let t0 = Date.now();
    await unleash.admin.setRollout(names.readNew, ENV, readNewStrategy, 100);
    await untilColumns('read-new 50% → 100%', t0, await expectedColumns(100));
    assert.equal(await wrongAmountRows(suite.knex, table), 0, 'every row right before contract');

    t0 = Date.now();
    await unleash.admin.enable(names.contract, ENV);
    await untilEvery(
      'contract flag on → phase contracted in every instance',
      t0,
      (m) => m.type === 'phase' && m.phase === 'contracted',
      60_000,
    );
    // Traffic on the contracted table, old column dropped: every instance serves more requests after it is gone.
    const oldColumnGone = async () =>
      (
        await suite.knex.raw(
          'SELECT count(*)::int AS n FROM information_schema.columns WHERE table_schema = ? AND table_name = ? AND column_name = ?',
          [suite.schema, table, OLD],
        )
      ).rows[0].n === 0;
    await waitFor(oldColumnGone, { timeoutMs: 20_000, description: 'the old column dropped' });
    const atDrop = await Promise.all(services.map((s) => s.report()));
    await waitFor(
      async () => (await Promise.all(services.map((s) => s.report()))).every((r, i) => r.ops > atDrop[i]!.ops + 50),
      { timeoutMs: 20_000, description: 'traffic on the contracted table' },
    );

    const stopped = await Promise.all(services.map((s) => s.stop()));
    services = [];
    for (const { report } of stopped) {
      assert.equal(report.errors, 0, report.errorSamples.join('; '));
      assert.ok(report.ops > 500 && report.readsOld > 0 && report.readsNew > 0, JSON.stringify(report));
    }
    const oldColumn = await suite.knex.raw(
      'SELECT count(*)::int AS n FROM information_schema.columns WHERE table_schema = ? AND table_name = ? AND column_name = ?',
      [suite.schema, table, OLD],
    );
    assert.equal(oldColumn.rows[0].n, 0, 'the controller was told dropOldColumn');
    const nulls = await suite.knex.raw('SELECT count(*)::int AS n FROM ?? WHERE amount IS NULL', [table]);
    assert.equal(nulls.rows[0].n, 0);
    // Every id the services wrote holds the last value its writer wrote (each writer owns its ids).
    const written = stopped.flatMap((s) => s.written);
    assert.ok(written.length > 200, `${written.length} rows written`);
    const wrong = await suite.knex.raw(
      `SELECT count(*)::int AS n FROM ?? t JOIN unnest(?::bigint[], ?::int[]) AS w(id, cents) ON w.id = t.id
        WHERE t.amount IS DISTINCT FROM (w.cents::numeric / 100)::numeric(12,2)`,
      [table, written.map(([i]) => i), written.map(([, c]) => c)],
    );
    assert.equal(wrong.rows[0].n, 0);
    const moves = (await events('transition')).map((e) => e.toPhase);
    // read-new → verified → read-new: the emergency lever and its release, above.
    assert.deepEqual(moves, [
      'expanded',
      'dual-write',
      'backfilling',
      'backfilled',
      'verified',
      'read-new',
      'verified',
      'read-new',
      'contracted',
    ]);
  });
});
