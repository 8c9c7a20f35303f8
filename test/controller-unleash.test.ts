import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineMigration } from '@phaseflag/core';
import { Phaseflag } from '@phaseflag/postgres';
import { internalsOf } from '@phaseflag/postgres/internal';
import {
  amountInput,
  createAmountTable,
  createSuiteSchema,
  holdsFor,
  startUnleash,
  waitFor,
  wrongAmountRows,
  type Suite,
  type UnleashServer,
} from '@phaseflag/testkit';
import { provisionFlags, UnleashFlagSource } from '@phaseflag/unleash';
import { ServiceProcess, type ServiceMessage } from './fixtures/service-process.js';

const ROWS = 20_000;
const REFRESH_MS = 1000;
const ENV = 'development';
const USERS = Array.from({ length: 200 }, (_, i) => String(i + 1));
const OLD = 'amount_cents';
const NEW = 'amount';

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
  const propagation: Array<{ what: string; ms: number[] }> = [];
  let suite: Suite;
  let unleash: UnleashServer;
  let pf: Phaseflag;
  let reference: UnleashFlagSource;
  let readNewStrategy: string;
  let services: ServiceProcess[] = [];

  before(async () => {
    suite = await createSuiteSchema('controller_unleash', { pool: { min: 0, max: 6 } });
    unleash = await startUnleash();
    pf = new Phaseflag({ knex: suite.knex, stateSchema: suite.stateSchema, pollIntervalMs: 200 });
    await pf.install();
    await createAmountTable(suite.knex, table, ROWS);
    const report = await provisionFlags(defineMigration(input), {
      url: unleash.url,
      token: unleash.adminToken,
      environment: ENV,
    });
    readNewStrategy = report.flags.find((f) => f.role === 'readNew')!.strategyId!;
    // The test's own view of the flags, to know which column each user should get.
    reference = new UnleashFlagSource({
      unleash: {
        url: `${unleash.url}/api`,
        appName: 'phaseflag-e2e-reference',
        environment: ENV,
        customHeaders: { Authorization: unleash.clientToken },
        refreshInterval: 200,
        disableMetrics: true,
        skipInstanceCountWarning: true,
        backupPath: mkdtempSync(join(tmpdir(), 'pf-unleash-ref-')),
      },
      logger: { debug() {}, info() {}, warn() {}, error() {} },
    });
    assert.ok(await reference.whenKnown(20_000));
    services = await Promise.all(
      ['svc-a', 'svc-b'].map((instanceId, index) =>
        ServiceProcess.start({
          PF_CONNECTION: suite.connectionString,
          PF_STATE_SCHEMA: suite.stateSchema,
          PF_MIGRATION: JSON.stringify(input),
          PF_INSTANCE_ID: instanceId,
          PF_INSTANCE_INDEX: String(index),
          PF_INSTANCES: '2',
          PF_TRAFFIC: '2',
          PF_MAX_ID: String(ROWS),
          PF_FLAGS: 'unleash',
          PF_UNLEASH_URL: unleash.url,
          PF_UNLEASH_TOKEN: unleash.clientToken,
          PF_UNLEASH_REFRESH_MS: String(REFRESH_MS),
          PF_UNLEASH_APP: 'phaseflag-e2e-service',
          PF_INTERVAL_MS: '1000',
          PF_POLL_MS: '200',
          PF_HEARTBEAT_MS: '200',
          PF_TTL_MS: '5000',
          PF_DROP_OLD: '1',
        }),
      ),
    );
  });

  after(async () => {
    for (const s of services) await s.kill();
    reference?.close();
    await unleash?.stop();
    await pf?.close();
    await suite?.cleanup();
    if (propagation.length > 0) {
      console.log(
        `      propagation, Admin API call → every instance applies it (unleash-client refreshInterval ${REFRESH_MS} ms):`,
      );
      for (const p of propagation) console.log(`        ${p.what}: ${p.ms.join(' ms, ')} ms`);
    }
  });

  /** Time from `t0` until every service has sent a message matching `applied` (at or after t0). */
  async function untilEvery(
    what: string,
    t0: number,
    applied: (m: ServiceMessage) => boolean,
    timeoutMs = 30_000,
  ): Promise<number[]> {
    const at = await Promise.all(
      services.map(async (s) => (await s.waitFor((m) => m.at >= t0 && applied(m), timeoutMs, what)).at),
    );
    const ms = at.map((t) => t - t0);
    propagation.push({ what, ms });
    return ms;
  }

  /** The column each user should read at this read-new rollout, by the reference client once it has seen it. */
  async function expectedColumns(rollout: number): Promise<Record<string, string>> {
    await waitFor(
      () => {
        const d = reference.client.getFeatureToggleDefinition(names.readNew);
        return (
          reference.status().known && d?.enabled === true && d.strategies?.[0]?.parameters?.rollout === String(rollout)
        );
      },
      { timeoutMs: 20_000, description: `the reference client to see read-new at ${rollout}%` },
    );
    return Object.fromEntries(
      USERS.map((u) => [u, reference.isEnabled(names.readNew, { userId: u }) === true ? NEW : OLD]),
    );
  }

  /** Time from `t0` until both instances route every user as `expected`. */
  async function untilColumns(what: string, t0: number, expected: Record<string, string>): Promise<number> {
    const done = new Map<ServiceProcess, number>();
    await waitFor(
      async () => {
        for (const s of services) {
          if (done.has(s)) continue;
          const columns = await s.columns(USERS);
          if (USERS.every((u) => columns[u] === expected[u])) done.set(s, Date.now() - t0);
        }
        return done.size === services.length;
      },
      { timeoutMs: 30_000, intervalMs: 20, description: what },
    );
    const ms = services.map((s) => done.get(s)!);
    propagation.push({ what, ms });
    return Math.max(...ms);
  }

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
