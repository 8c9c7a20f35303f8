import assert from 'node:assert/strict';
import { StaticFlagSource, defineMigration, type Logger, type Migration } from '@phaseflag/core';
import { amountInput, createSuiteSchema, waitFor, type Suite } from '@phaseflag/testkit';
import { Phaseflag, type Controller, type ControllerEvent } from '../src/index.js';
import { internalsOf } from '../src/internal.js';

describe('the controller tells the application what it does: onEvent', function () {
  this.timeout(120_000);
  const errors: string[] = [];
  const logger: Logger = {
    debug: () => undefined,
    info: () => undefined,
    warn: () => undefined,
    error: (m) => errors.push(m),
  };
  let suite: Suite;
  let pf: Phaseflag;
  const cleanups: Array<() => Promise<unknown>> = [];

  before(async () => {
    suite = await createSuiteSchema('controller_events');
    pf = new Phaseflag({ knex: suite.knex, stateSchema: suite.stateSchema, pollIntervalMs: 100, graceMs: 50, logger });
    await pf.install();
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  });
  after(async () => {
    await pf?.close();
    await suite?.cleanup();
  });

  const createTable = async (table: string, rows: number) => {
    await suite.knex.raw('CREATE TABLE ?? (id bigserial PRIMARY KEY, amount_cents integer NOT NULL)', [table]);
    await suite.knex.raw('INSERT INTO ?? (amount_cents) SELECT g FROM generate_series(1, ?::int) AS g', [table, rows]);
  };
  const start = async (
    engine: Phaseflag,
    m: Migration,
    flags: StaticFlagSource,
    onEvent: (e: ControllerEvent) => void,
    instanceId: string,
  ): Promise<Controller> => {
    const c = engine.controller(m, { flags, intervalMs: 100, instanceId, logger, onEvent });
    cleanups.push(() => c.stop());
    await c.start();
    return c;
  };
  const flagsFor = (id: string, on: Partial<Record<'dual-write' | 'backfill' | 'read-new' | 'contract', boolean>>) =>
    new StaticFlagSource(
      Object.fromEntries(
        (['dual-write', 'backfill', 'read-new', 'contract'] as const).map((f) => [`${id}.${f}`, on[f] ?? false]),
      ),
    );

  it('reports its leadership, each transition it applies with the flag behind it, and each refusal once, with reason and hint', async () => {
    await createTable('orders_events', 500);
    const m = defineMigration(amountInput('events', 'orders_events'));
    const flags = flagsFor('events', { 'dual-write': true, 'read-new': true });
    const events: ControllerEvent[] = [];
    const c = await start(pf, m, flags, (e) => events.push(e), 'ctl-a');
    await waitFor(() => events.some((e) => e.kind === 'refused'), { timeoutMs: 20_000, description: 'the refusal' });
    for (let i = 0; i < 5; i++) await c.reconcile();

    assert.deepEqual(
      events.filter((e) => e.kind === 'leader').map((e) => [e.migrationId, e.leader, e.reason]),
      [['events', true, 'acquired']],
    );
    const transitions = events.flatMap((e) => (e.kind === 'transition' ? [[e.action, e.from, e.to, e.flag]] : []));
    assert.deepEqual(transitions, [
      ['expand', 'pending', 'expanded', 'events.dual-write'],
      ['dual-write', 'expanded', 'dual-write', 'events.dual-write'],
    ]);
    const refusals = events.filter((e) => e.kind === 'refused');
    assert.equal(refusals.length, 1, 'once, not on every pass');
    const r = refusals[0]!;
    assert.equal(r.kind, 'refused');
    if (r.kind !== 'refused') return;
    assert.deepEqual(
      { migrationId: r.migrationId, action: r.action, phase: r.phase, code: r.code, flag: r.flag },
      {
        migrationId: 'events',
        action: 'read-new',
        phase: 'dual-write',
        code: 'read-new-before-verified',
        flag: 'events.read-new',
      },
    );
    assert.match(r.reason, /not verified/);
    assert.ok(r.hint.length > 0);
    assert.ok(r.at instanceof Date && Math.abs(r.at.getTime() - Date.now()) < 60_000);
    // The same refusal as the event log holds.
    const logged = (await pf.migration(m).status()).events.filter((e) => e.kind === 'refused');
    assert.deepEqual(
      logged.map((e) => [e.action, e.reason]),
      [[r.action, r.reason]],
    );

    // Verify follows the backfill by itself: no flag behind it.
    flags.set('events.backfill', true);
    await waitFor(() => events.some((e) => e.kind === 'transition' && e.to === 'read-new'), {
      timeoutMs: 30_000,
      description: 'read-new',
    });
    assert.deepEqual(events.flatMap((e) => (e.kind === 'transition' ? [[e.to, e.flag]] : [])).slice(2), [
      ['backfilling', 'events.backfill'],
      ['backfilled', 'events.backfill'],
      ['verified', null],
      ['read-new', 'events.read-new'],
    ]);
  });

  it('reports losing the lead on stop, and the follower taking it over', async () => {
    await createTable('orders_lead', 10);
    const m = defineMigration(amountInput('lead', 'orders_lead'));
    const flags = flagsFor('lead', {});
    const a: ControllerEvent[] = [];
    const b: ControllerEvent[] = [];
    const second = new Phaseflag({ knex: suite.knex, stateSchema: suite.stateSchema, pollIntervalMs: 100, logger });
    cleanups.push(() => second.close());
    const first = await start(pf, m, flags, (e) => a.push(e), 'ctl-first');
    await start(second, m, flags, (e) => b.push(e), 'ctl-second');
    assert.equal(first.isLeader('lead'), true);
    assert.equal(b.length, 0, 'a follower reports nothing while it waits');
    await first.stop();
    await waitFor(() => b.some((e) => e.kind === 'leader' && e.leader), {
      timeoutMs: 10_000,
      description: 'the takeover',
    });
    assert.deepEqual(
      a.map((e) => (e.kind === 'leader' ? [e.leader, e.reason] : e.kind)),
      [
        [true, 'acquired'],
        [false, 'stopped'],
      ],
    );
  });

  it('keeps working when the listener throws, and logs it once; refuses a listener that is not a function', async () => {
    await createTable('orders_throws', 10);
    const m = defineMigration(amountInput('throws', 'orders_throws'));
    const flags = flagsFor('throws', { 'dual-write': true });
    errors.length = 0;
    await start(
      pf,
      m,
      flags,
      () => {
        throw new Error('listener bug');
      },
      'ctl-throws',
    );
    await waitFor(async () => (await internalsOf(pf).store.get('throws'))?.phase === 'dual-write', {
      timeoutMs: 20_000,
      description: 'dual-write despite the listener',
    });
    assert.equal(errors.filter((e) => /onEvent threw .*listener bug/.test(e)).length, 1, errors.join('\n'));
    assert.throws(() => pf.controller(m, { flags, onEvent: 'nope' as never }), /onEvent must be a function/);
  });
});
