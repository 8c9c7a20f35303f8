import assert from 'node:assert/strict';
import { CONTROLLER_SPAN, SPAN, StaticFlagSource, type Logger, type Migration } from '@phaseflag/core';
import { captureSpans, createSuiteSchema, startLoad, waitFor, type LoadOp, type ReadableSpan, type Suite } from '@phaseflag/testkit';
import type { Knex } from 'knex';
import { Phaseflag, type Controller, type KnexRouter } from '../src/index.js';
import { amountMigration } from './fixtures/amount-migration.js';
import { internalsOf } from '../src/internal.js';

interface LogLine { level: string; message: string; fields?: Record<string, unknown> }

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function createTable(knex: Knex, table: string, rows: number): Promise<void> {
  await knex.raw('CREATE TABLE ?? (id bigserial PRIMARY KEY, amount_cents integer NOT NULL)', [table]);
  await knex.raw('INSERT INTO ?? (amount_cents) SELECT (g * 37) % 100000 FROM generate_series(1, ?::int) AS g', [table, rows]);
  await knex.raw('ANALYZE ??', [table]);
}

async function wrongRows(knex: Knex, table: string): Promise<number> {
  return (await knex.raw('SELECT count(*)::int AS n FROM ?? WHERE amount IS DISTINCT FROM (amount_cents::numeric / 100)::numeric(12,2)', [table])).rows[0].n;
}

function trafficOps(router: KnexRouter, table: string, maxId: number): LoadOp[] {
  const rand = (n: number) => 1 + Math.floor(Math.random() * n);
  return [
    { name: 'read', weight: 3, run: async (_i, db) => { await db(table).select('id', router.select({ userId: String(rand(50)) })).where('id', rand(maxId)); } },
    { name: 'insert', weight: 1, run: async (_i, db) => { await db(table).insert(router.row({ amount_cents: rand(99_999) })); } },
    { name: 'update', weight: 2, run: async (_i, db) => { await db(table).update(router.row({ amount_cents: rand(99_999) })).where('id', rand(maxId)); } },
  ];
}

const linksTo = (span: ReadableSpan, target: ReadableSpan | undefined) =>
  target !== undefined && span.links.some((l) => l.context.spanId === target.spanContext().spanId);

describe('the controller: flags drive the phases, Postgres decides', function () {
  this.timeout(120_000);
  const spans = captureSpans();
  const logs: LogLine[] = [];
  const logger: Logger = {
    debug: () => undefined,
    info: (message, fields) => logs.push({ level: 'info', message, fields }),
    warn: (message, fields) => logs.push({ level: 'warn', message, fields }),
    error: (message, fields) => logs.push({ level: 'error', message, fields }),
  };
  let suite: Suite;
  let pf: Phaseflag;
  const cleanups: Array<() => Promise<unknown>> = [];

  before(async () => {
    suite = await createSuiteSchema('controller', { pool: { min: 0, max: 20 } });
    pf = new Phaseflag({ knex: suite.knex, stateSchema: suite.stateSchema, pollIntervalMs: 100, graceMs: 200, instanceTtlMs: 1500, logger });
    await pf.install();
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  });
  after(async () => {
    await pf?.close();
    await suite?.cleanup();
  });

  const controller = (m: Migration, flags: StaticFlagSource, extra: Partial<Parameters<Phaseflag['controller']>[1]> = {}, engine = pf): Controller => {
    const c = engine.controller(m, { flags, intervalMs: 200, logger, ...extra });
    cleanups.push(() => c.stop());
    return c;
  };
  const phaseOf = async (id: string) => (await internalsOf(pf).store.get(id))?.phase;
  const waitPhase = (id: string, phase: string, timeoutMs = 30_000) =>
    waitFor(async () => (await internalsOf(pf).store.get(id))?.phase === phase, { timeoutMs, description: `${id} to reach ${phase}` });

  it('walks the whole life cycle from flag changes alone, under traffic, and links every transition to its cause', async () => {
    const table = 'orders_life';
    const rows = 20_000;
    await createTable(suite.knex, table, rows);
    const m = amountMigration('life', table);
    const flags = new StaticFlagSource({ 'life.dual-write': false, 'life.backfill': false, 'life.read-new': false, 'life.contract': false });
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
    await waitFor(() => router.column({ userId: '1' }) === 'amount', { timeoutMs: 2000, description: 'the router to apply read-new' });
    flags.set('life.contract', true);
    await waitPhase('life', 'contracted');
    const report = await load.stop();
    await c.stop();

    assert.equal(report.errors, 0, JSON.stringify(report.errorSamples.slice(0, 3)));
    assert.ok(report.ops > 100, `traffic ran throughout (${report.ops} ops)`);
    assert.equal((await suite.knex.raw("SELECT count(*)::int AS n FROM information_schema.columns WHERE table_schema = ? AND table_name = ? AND column_name = 'amount_cents'", [suite.schema, table])).rows[0].n, 0, 'dropOldColumn');
    assert.equal((await suite.knex.raw('SELECT count(*)::int AS n FROM ?? WHERE amount IS NULL', [table])).rows[0].n, 0);

    const events = (await pf.migration(m).status()).events.filter((e) => e.kind === 'transition');
    assert.deepEqual(events.map((e) => e.toPhase), ['expanded', 'dual-write', 'backfilling', 'backfilled', 'verified', 'read-new', 'contracted']);
    assert.equal(events.find((e) => e.action === 'backfill')?.detail?.flag, 'life.backfill', 'each event names the flag that caused it');

    const leader = spans.byName(CONTROLLER_SPAN.leader).find((s) => s.attributes['phaseflag.migration.id'] === 'life');
    assert.ok(leader, 'the leadership is a span');
    const changes = spans.byName(CONTROLLER_SPAN.flagChange).filter((s) => s.attributes['phaseflag.migration.id'] === 'life');
    const transitions = spans.byName(SPAN.transition).filter((s) => s.attributes['phaseflag.migration.id'] === 'life');
    assert.equal(transitions.length, 7, transitions.map((s) => s.attributes['phaseflag.action']).join(', '));
    for (const t of transitions) assert.ok(linksTo(t, leader), `${String(t.attributes['phaseflag.action'])} links to the leader span`);
    const byFlag = (key: string, value: boolean) => changes.find((s) => s.attributes['feature_flag.key'] === key && s.attributes['feature_flag.result.value'] === value);
    const expectCause: Array<[string, string]> = [['expand', 'life.dual-write'], ['dual-write', 'life.dual-write'], ['backfill', 'life.backfill'], ['read-new', 'life.read-new'], ['contract', 'life.contract']];
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

  it('refuses a read-new flag turned on too early once (one event, one log line), and routers keep reading old', async () => {
    const table = 'orders_early';
    await createTable(suite.knex, table, 2000);
    const m = amountMigration('early', table);
    const flags = new StaticFlagSource({ 'early.dual-write': true, 'early.backfill': false, 'early.read-new': false, 'early.contract': false });
    const router = await pf.migration(m).router(flags, { heartbeatMs: 0 });
    cleanups.push(() => router.close());
    const c = controller(m, flags);
    await c.start();
    await waitPhase('early', 'dual-write');
    spans.reset();
    logs.length = 0;

    flags.set('early.read-new', true);
    for (let i = 0; i < 10; i++) await c.reconcile();
    await sleep(500); // and a few periodic passes

    const refused = (await pf.migration(m).status()).events.filter((e) => e.kind === 'refused');
    assert.equal(refused.length, 1, JSON.stringify(refused));
    assert.equal(refused[0]!.action, 'read-new');
    assert.match(refused[0]!.reason!, /not verified/);
    assert.equal(logs.filter((l) => /read-new refused/.test(l.message)).length, 1, 'logged once, not on every reconcile');
    const span = spans.byName(SPAN.refused).filter((s) => s.attributes['phaseflag.migration.id'] === 'early');
    assert.equal(span.length, 1);
    assert.equal(span[0]!.attributes['feature_flag.key'], 'early.read-new');
    assert.equal(span[0]!.attributes['feature_flag.result.value'], true);
    assert.match(String(span[0]!.attributes['phaseflag.reason']), /not verified/);
    assert.equal(router.column({ userId: '7' }), 'amount_cents', 'the flag is on, the database says no: reads stay old');
    assert.equal(await phaseOf('early'), 'dual-write');

    // Something changes (the flag goes off and on again): that is news, recorded once more.
    flags.set('early.read-new', false);
    await c.reconcile();
    flags.set('early.read-new', true);
    for (let i = 0; i < 5; i++) await c.reconcile();
    assert.equal((await pf.migration(m).status()).events.filter((e) => e.kind === 'refused').length, 2);
  });

  it('never trusts a flag alone: read-new on at start-up moves reads only once the database says verified', async () => {
    const table = 'orders_stale';
    await createTable(suite.knex, table, 5000);
    const m = amountMigration('stale', table, { batch: { size: 500, targetBatchMs: 0, pauseMs: 20 } });
    // A stale backup or bootstrap: every flag but contract already on when the service starts.
    const flags = new StaticFlagSource({ 'stale.dual-write': true, 'stale.backfill': true, 'stale.read-new': true, 'stale.contract': false });
    const router = await pf.migration(m).router(flags, { heartbeatMs: 0 });
    cleanups.push(() => router.close());
    const seen: Array<[string, string | null]> = [];
    const sampler = setInterval(() => seen.push([router.core.currentPhase, router.column({ userId: '3' })]), 5);
    cleanups.push(async () => clearInterval(sampler));
    const c = controller(m, flags);
    await c.start();
    await waitPhase('stale', 'read-new');
    await waitFor(() => router.column({ userId: '3' }) === 'amount', { timeoutMs: 2000, description: 'the router to apply read-new' });
    clearInterval(sampler);

    const early = seen.filter(([phase]) => !['verified', 'read-new'].includes(phase));
    assert.ok(early.length > 5, `sampled before verified (${early.length})`);
    assert.ok(early.every(([, col]) => col === 'amount_cents'), 'never read the new column before verified');
    const refused = (await pf.migration(m).status()).events.filter((e) => e.kind === 'refused' && e.action === 'read-new');
    assert.ok(refused.length >= 1 && refused.length <= 4, `refused while the database was not there yet, once per phase at most (${refused.length})`);
    assert.equal(await wrongRows(suite.knex, table), 0);
  });

  it('pauses the backfill when its flag goes off and resumes it from the checkpoint when it comes back', async () => {
    const table = 'orders_pause';
    const rows = 30_000;
    await createTable(suite.knex, table, rows);
    const m = amountMigration('pause', table, { batch: { size: 500, targetBatchMs: 0, pauseMs: 15 } });
    const flags = new StaticFlagSource({ 'pause.dual-write': true, 'pause.backfill': true, 'pause.read-new': false, 'pause.contract': false });
    const c = controller(m, flags);
    const done = async () => Number((await suite.knex.raw('SELECT coalesce(sum(rows_done), 0)::int AS n FROM ??.backfill_ranges WHERE migration_id = ?', [suite.stateSchema, 'pause'])).rows[0].n);
    await c.start();
    await waitFor(async () => (await done()) >= 3000, { timeoutMs: 30_000, description: 'some batches' });

    flags.set('pause.backfill', false);
    await waitPhase('pause', 'paused', 5000);
    await waitFor(() => c.status()[0]!.backfillRunning === false, { description: 'the runner to stop after its batch' });
    const atPause = await done();
    assert.ok(atPause < rows, `paused midway (${atPause})`);
    await sleep(400);
    assert.equal(await done(), atPause, 'nothing moves while paused');

    spans.reset();
    flags.set('pause.backfill', true);
    await waitPhase('pause', 'verified');
    assert.equal(await done(), rows, 'every row once: the resumed run started at the checkpoint');
    assert.equal(await wrongRows(suite.knex, table), 0);
    const actions = (await pf.migration(m).status()).events.filter((e) => e.kind === 'transition').map((e) => e.action);
    assert.deepEqual(actions.slice(2), ['backfill', 'pause', 'resume', 'complete-backfill', 'verify']);
    const resume = spans.byName(SPAN.transition).find((s) => s.attributes['phaseflag.action'] === 'resume');
    assert.equal(resume?.attributes['feature_flag.key'], 'pause.backfill');
  });

  it('lets exactly one of two controllers lead, and the other take over when the leader stops', async () => {
    const table = 'orders_two';
    await createTable(suite.knex, table, 1000);
    const m = amountMigration('two', table);
    const flags = new StaticFlagSource({ 'two.dual-write': false, 'two.backfill': false, 'two.read-new': false, 'two.contract': false });
    const other = new Phaseflag({ knex: suite.newKnex({ pool: { min: 0, max: 5 } }), stateSchema: suite.stateSchema, pollIntervalMs: 100, graceMs: 200, logger });
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
    const actors = (await pf.migration(m).status()).events.filter((e) => e.kind === 'transition').map((e) => e.detail?.controller);
    assert.deepEqual([...new Set(actors)], [leader.instanceId], 'only the leader acted');

    await leader.stop();
    await waitFor(() => follower.isLeader('two'), { timeoutMs: 5000, description: 'the follower to take over' });
    flags.set('two.backfill', true);
    await waitPhase('two', 'verified');
    const last = (await pf.migration(m).status()).events.filter((e) => e.kind === 'transition').pop()!;
    assert.equal(last.detail?.controller, follower.instanceId);
  });

  it('holds the backfill for an instance that does not write both columns (trigger off) until it catches up or its heartbeat expires', async () => {
    const table = 'orders_fleet';
    await createTable(suite.knex, table, 2000);
    const m = amountMigration('fleet', table, { sync: { trigger: false } });
    const flags = new StaticFlagSource({ 'fleet.dual-write': true, 'fleet.backfill': false, 'fleet.read-new': false, 'fleet.contract': false });
    const router = await pf.migration(m).router(flags, { heartbeatMs: 100, instanceId: 'app-current' });
    cleanups.push(() => router.close());
    const c = controller(m, flags);
    await c.start();
    await waitPhase('fleet', 'dual-write');
    // An instance that has not heard of dual-write yet: it writes the old column only.
    const lagging = (phase: 'expanded' | 'dual-write') => internalsOf(pf).store.heartbeat({
      instanceId: 'app-lagging', migrationId: 'fleet', phase, writesOld: true, writesNew: phase === 'dual-write', readsOld: true, readsNew: false,
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
    assert.equal(await wrongRows(suite.knex, table), 0);

    // Second round on another migration: the lagging instance never catches up; its heartbeat expires (TTL 1.5 s).
    const table2 = 'orders_fleet2';
    await createTable(suite.knex, table2, 1000);
    const m2 = amountMigration('fleet2', table2, { sync: { trigger: false } });
    const flags2 = new StaticFlagSource({ 'fleet2.dual-write': true, 'fleet2.backfill': true, 'fleet2.read-new': false, 'fleet2.contract': false });
    const router2 = await pf.migration(m2).router(flags2, { heartbeatMs: 100, instanceId: 'app2-current' });
    cleanups.push(() => router2.close());
    await internalsOf(pf).store.heartbeat({ instanceId: 'app2-gone', migrationId: 'fleet2', phase: 'expanded', writesOld: true, writesNew: false, readsOld: true, readsNew: false });
    const c2 = controller(m2, flags2);
    const started = Date.now();
    await c2.start();
    await waitPhase('fleet2', 'verified', 15_000);
    assert.ok(Date.now() - started >= 1000, 'waited for the TTL');
    const status = c2.status()[0]!;
    assert.deepEqual(status.staleInstances.map((i) => i.instanceId), ['app2-gone'], 'reported in status');
    assert.equal(logs.filter((l) => /app2-gone .*older than the 1500 ms TTL/.test(l.message)).length, 1, 'and one log line');
  });
  it('moves nothing while the flags are unknown, and moves as soon as they are known', async () => {
    const table = 'orders_unknown';
    await createTable(suite.knex, table, 500);
    const m = amountMigration('unknown', table);
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
    const table = 'orders_cut';
    await createTable(suite.knex, table, 500);
    const m = pf.migration(amountMigration('cut', table));
    await m.expand();
    await m.startDualWrite();
    await m.backfill();
    const stopped = new AbortController();
    stopped.abort();
    await assert.rejects(m.verify({ signal: stopped.signal }), (e: Error) => e.name === 'AbortError');
    const row = (await internalsOf(pf).store.get('cut'))!;
    assert.deepEqual([row.phase, row.verify_result], ['backfilled', null], 'no verdict recorded: a controller verifies again');
    assert.match((await m.status()).events.at(-1)!.reason!, /aborted after 0 rows/);
    await m.verify();
    assert.equal((await internalsOf(pf).store.get('cut'))!.phase, 'verified');
  });
});
