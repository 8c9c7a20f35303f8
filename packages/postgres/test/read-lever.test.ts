import assert from 'node:assert/strict';
import { defineMigration } from '@phaseflag/core';
import { amountInput, createSuiteSchema, waitFor, type Suite } from '@phaseflag/testkit';
import { Phaseflag, type Controller, type KnexRouter } from '../src/index.js';
import { internalsOf } from '../src/internal.js';
import { CountingFlagSource } from './fixtures/controller-suite.js';

describe('the emergency lever: readOld() sends every read back by itself and holds it there', function () {
  this.timeout(120_000);
  let suite: Suite;
  let pf: Phaseflag;
  const cleanups: Array<() => Promise<unknown>> = [];

  before(async () => {
    suite = await createSuiteSchema('read_lever');
    pf = new Phaseflag({
      knex: suite.knex,
      stateSchema: suite.stateSchema,
      pollIntervalMs: 100,
      graceMs: 50,
      logger: { debug() {}, info() {}, warn() {}, error() {} },
    });
    await pf.install();
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  });
  after(async () => {
    await pf?.close();
    await suite?.cleanup();
  });

  const setUp = async (id: string) => {
    const table = `orders_${id}`;
    await suite.knex.raw('CREATE TABLE ?? (id bigserial PRIMARY KEY, amount_cents integer NOT NULL)', [table]);
    await suite.knex.raw('INSERT INTO ?? (amount_cents) SELECT g FROM generate_series(1, 2000) AS g', [table]);
    const m = defineMigration(amountInput(id, table));
    const flags = new CountingFlagSource({
      [`${id}.dual-write`]: true,
      [`${id}.backfill`]: true,
      [`${id}.read-new`]: true,
      [`${id}.contract`]: false,
    });
    const h = pf.migration(m);
    const router: KnexRouter = await h.router(flags, { heartbeatMs: 0 });
    cleanups.push(() => router.close());
    const c: Controller = pf.controller(m, { flags, intervalMs: 100 });
    cleanups.push(() => c.stop());
    await c.start();
    await waitFor(async () => (await internalsOf(pf).store.get(id))?.phase === 'read-new', {
      timeoutMs: 30_000,
      description: `${id} to reach read-new`,
    });
    await waitFor(() => router.column({ userId: '1' }) === 'amount', {
      timeoutMs: 2000,
      description: 'the router to read new',
    });
    return { h, flags, router, c };
  };
  const events = async (id: string) =>
    (await pf.migration(defineMigration(amountInput(id, `orders_${id}`))).status()).events;

  it('stays in verified with the read-new flag on, refused once, until the flag is seen off and on again', async () => {
    const { h, flags, router, c } = await setUp('lever');
    await h.readOld();
    await waitFor(() => router.column({ userId: '1' }) === 'amount_cents', {
      timeoutMs: 2000,
      description: 'the router to read old with the flag still on',
    });
    const held = (await internalsOf(pf).store.get('lever'))!.reads_held_at;
    assert.ok(held instanceof Date, 'readOld() records the hold');
    for (let i = 0; i < 10; i++) await c.reconcile();
    await flags.passes(3); // periodic passes too
    assert.equal(
      (await internalsOf(pf).store.get('lever'))!.phase,
      'verified',
      'the controller did not move back to read-new',
    );
    assert.equal(router.column({ userId: '1' }), 'amount_cents');
    assert.equal(c.status()[0]!.readsHeldSince?.getTime(), held.getTime(), 'status shows the hold');
    const refused = (await events('lever')).filter((e) => e.kind === 'refused' && e.fromPhase === 'verified');
    assert.equal(refused.length, 1, JSON.stringify(refused));
    assert.equal(refused[0]!.action, 'read-new');
    assert.match(refused[0]!.reason!, /read-old/);
    assert.match(
      String((refused[0]!.detail as { hint?: string } | null)?.hint ?? JSON.stringify(refused[0])),
      /off and on again|phaseflag read-new/,
    );

    flags.set('lever.read-new', false);
    await waitFor(async () => (await internalsOf(pf).store.get('lever'))!.reads_held_at === null, {
      timeoutMs: 5000,
      description: 'the hold to be released',
    });
    const released = (await events('lever')).filter((e) => e.action === 'release-reads');
    assert.equal(released.length, 1);
    assert.equal((await internalsOf(pf).store.get('lever'))!.phase, 'verified');
    flags.set('lever.read-new', true);
    await waitFor(async () => (await internalsOf(pf).store.get('lever'))?.phase === 'read-new', {
      timeoutMs: 5000,
      description: 'read-new again',
    });
    await waitFor(() => router.column({ userId: '1' }) === 'amount', {
      timeoutMs: 2000,
      description: 'the router to read new again',
    });
  });

  it('releases the hold with readNew() by hand, and a read-old the flag asked for holds nothing', async () => {
    const { h, flags, router } = await setUp('byhand');
    await h.readOld();
    await waitFor(() => router.column({ userId: '1' }) === 'amount_cents', {
      timeoutMs: 2000,
      description: 'reads old',
    });
    await h.readNew();
    const heldRefusals = async () =>
      (await events('byhand')).filter((e) => e.kind === 'refused' && e.fromPhase === 'verified').length;
    const refusedBefore = await heldRefusals();
    const row = (await internalsOf(pf).store.get('byhand'))!;
    assert.deepEqual([row.phase, row.reads_held_at], ['read-new', null]);
    await waitFor(() => router.column({ userId: '1' }) === 'amount', { timeoutMs: 2000, description: 'reads new' });

    flags.set('byhand.read-new', false); // the controller moves back: the flag itself keeps reads old
    await waitFor(async () => (await internalsOf(pf).store.get('byhand'))?.phase === 'verified', {
      timeoutMs: 5000,
      description: 'read-old by the flag',
    });
    assert.equal((await internalsOf(pf).store.get('byhand'))!.reads_held_at, null);
    flags.set('byhand.read-new', true);
    await waitFor(async () => (await internalsOf(pf).store.get('byhand'))?.phase === 'read-new', {
      timeoutMs: 5000,
      description: 'read-new by the flag',
    });
    assert.equal(await heldRefusals(), refusedBefore, 'no hold refused read-new');
  });
});
