import assert from 'node:assert/strict';
import { defineMigration, type MigrationInput } from '@phaseflag/core';
import { Phaseflag } from '@phaseflag/postgres';
import { internalsOf, type EventRow } from '@phaseflag/postgres/internal';
import { createSuiteSchema, startUnleash, waitFor, type Suite, type UnleashServer } from '@phaseflag/testkit';
import { provisionFlags } from '@phaseflag/unleash';
import { amountInput, createAmountTable, flagNames, wrongAmountRows } from './fixtures/amount-migration.js';
import { ServiceProcess, type ServiceMessage } from './fixtures/service-process.js';

const ENV = 'development';
const REFRESH_MS = 1000;
const INTERVAL_MS = 500;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Operator scenarios against a real unleash-server: flags are changed only through its Admin API, and the service
 * instances are separate processes (test/fixtures/service-instance.ts), each with knex, a KnexRouter serving reads
 * and writes the whole time, an UnleashFlagSource (1 s refresh) and a Controller (any of them may lead).
 * Each `it` is a migration of its own, on its own table, with its own four flags.
 */
describe('operating a migration through Unleash: pause and resume, leader killed, a lagging instance', function () {
  this.timeout(120_000);
  let suite: Suite;
  let unleash: UnleashServer;
  let pf: Phaseflag;
  let running: ServiceProcess[] = [];
  const heartbeatTimers: NodeJS.Timeout[] = [];
  const timings: string[] = [];

  before(async () => {
    suite = await createSuiteSchema('controller_unleash_ops', { pool: { min: 0, max: 6 } });
    unleash = await startUnleash();
    pf = new Phaseflag({ knex: suite.knex, stateSchema: suite.stateSchema, pollIntervalMs: 200 });
    await pf.install();
  });

  afterEach(async () => {
    // A failed test must not leave processes serving (or leading), or heartbeats, behind it.
    for (const t of heartbeatTimers.splice(0)) clearInterval(t);
    for (const s of running.splice(0)) await s.kill();
  });

  after(async () => {
    for (const s of running.splice(0)) await s.kill();
    await unleash?.stop();
    await pf?.close();
    await suite?.cleanup();
    if (timings.length > 0) console.log(`      timings (unleash-client refreshInterval ${REFRESH_MS} ms, controller intervalMs ${INTERVAL_MS}):\n        ${timings.join('\n        ')}`);
  });

  /** The migration's table with `rows` rows, and its four flags in Unleash (off, with their strategies). */
  async function prepare(input: MigrationInput, table: string, rows: number): Promise<void> {
    await createAmountTable(suite.knex, table, rows);
    await provisionFlags(defineMigration(input), { url: unleash.url, token: unleash.adminToken, environment: ENV });
  }

  /** Service instances of one migration, started side by side, flags from Unleash. */
  async function startServices(input: MigrationInput, ids: string[], rows: number, env: Record<string, string> = {}): Promise<ServiceProcess[]> {
    const started = await Promise.all(ids.map((instanceId, index) => ServiceProcess.start({
      PF_CONNECTION: suite.connectionString, PF_STATE_SCHEMA: suite.stateSchema, PF_MIGRATION: JSON.stringify(input),
      PF_INSTANCE_ID: instanceId, PF_INSTANCE_INDEX: String(index), PF_INSTANCES: String(ids.length), PF_TRAFFIC: '2', PF_MAX_ID: String(rows),
      PF_FLAGS: 'unleash', PF_UNLEASH_URL: unleash.url, PF_UNLEASH_TOKEN: unleash.clientToken, PF_UNLEASH_REFRESH_MS: String(REFRESH_MS),
      PF_UNLEASH_APP: `phaseflag-ops-${input.id}`, PF_INTERVAL_MS: String(INTERVAL_MS), PF_POLL_MS: '200', PF_HEARTBEAT_MS: '200', PF_TTL_MS: '5000',
      ...env,
    })));
    running.push(...started);
    return started;
  }

  /** Waits until every service has sent a message matching `applied` at or after `t0`; returns the ms each took. */
  async function untilEvery(services: ServiceProcess[], what: string, t0: number, applied: (m: ServiceMessage) => boolean, timeoutMs = 30_000): Promise<number[]> {
    const at = await Promise.all(services.map(async (s) => (await s.waitFor((m) => m.at >= t0 && applied(m), timeoutMs, what)).at));
    return at.map((t) => t - t0);
  }
  const phaseIs = (phase: string) => (m: ServiceMessage) => m.type === 'phase' && m.phase === phase;

  const events = async (id: string, kind?: EventRow['kind']): Promise<EventRow[]> =>
    (await internalsOf(pf).store.events(id, 10_000)).filter((e) => kind === undefined || e.kind === kind);
  const phase = async (id: string) => (await internalsOf(pf).store.get(id))?.phase;

  /** What the state store says of the backfill: the counters every committed batch moves, and the checkpoint. */
  async function backfillState(id: string): Promise<{ rowsBackfilled: number; rowsDone: number; batches: number; checkpoint: string; done: boolean }> {
    const r = (await suite.knex.raw(
      `SELECT m.rows_backfilled::int AS rows_backfilled, coalesce(sum(r.rows_done), 0)::int AS rows_done, coalesce(sum(r.batches), 0)::int AS batches,
              coalesce(string_agg(r.checkpoint::text, ',' ORDER BY r.worker), '') AS checkpoint, coalesce(bool_and(r.done), false) AS done
         FROM ??.migrations m LEFT JOIN ??.backfill_ranges r ON r.migration_id = m.id
        WHERE m.id = ? GROUP BY m.rows_backfilled`,
      [suite.stateSchema, suite.stateSchema, id],
    )).rows[0];
    return { rowsBackfilled: r.rows_backfilled, rowsDone: r.rows_done, batches: r.batches, checkpoint: r.checkpoint, done: r.done };
  }

  /** The rows the backfill covers: those up to the upper key bounded when it started (seed plus early inserts). */
  async function boundedRows(id: string, table: string): Promise<number> {
    return (await suite.knex.raw(
      `SELECT count(*)::int AS n FROM ?? WHERE id <= (SELECT max((upper_key->>0)::bigint) FROM ??.backfill_ranges WHERE migration_id = ?)`,
      [table, suite.stateSchema, id],
    )).rows[0].n;
  }

  /** Stops the services; asserts no failed request and that every id each wrote holds the last value it wrote. */
  async function stopAndCheckWrites(services: ServiceProcess[], table: string): Promise<void> {
    const stopped = await Promise.all(services.map((s) => s.stop()));
    running = running.filter((s) => !services.includes(s));
    for (const [i, { report }] of stopped.entries()) {
      assert.equal(report.errors, 0, `${services[i]!.instanceId}: ${report.errorSamples.join('; ')}`);
      assert.ok(report.ops > 100, `${services[i]!.instanceId} served traffic throughout (${report.ops} ops)`);
    }
    const written = stopped.flatMap((s) => s.written);
    assert.ok(written.length > 50, `${written.length} rows written`);
    const wrong = await suite.knex.raw(
      `SELECT count(*)::int AS n FROM ?? t JOIN unnest(?::bigint[], ?::int[]) AS w(id, cents) ON w.id = t.id
        WHERE t.amount_cents IS DISTINCT FROM w.cents OR t.amount IS DISTINCT FROM (w.cents::numeric / 100)::numeric(12,2)`,
      [table, written.map(([i]) => i), written.map(([, c]) => c)],
    );
    assert.equal(wrong.rows[0].n, 0, 'every row a service wrote holds what it wrote last, in both columns');
    assert.equal(await wrongAmountRows(suite.knex, table), 0, 'every row of the table is right');
  }

  const currentLeader = (services: ServiceProcess[]): ServiceProcess | undefined =>
    services.find((s) => s.messages.filter((m) => m.type === 'leader').at(-1)?.leader === true);

  it('pauses the backfill when the operator turns its flag off in Unleash, and resumes it from the checkpoint when it goes back on', async () => {
    const id = 'ops-pause';
    const table = 'orders_ops_pause';
    const ROWS = 60_000;
    const BATCH = 300;
    // 200 batches with a 25 ms pause each: at least 5 s of backfill, so it is still running when the flag lands.
    const input = amountInput(id, table, { batch: { size: BATCH, targetBatchMs: 0, pauseMs: 25 } });
    const names = flagNames(id);
    await prepare(input, table, ROWS);
    const services = await startServices(input, ['pause-a', 'pause-b'], ROWS);

    let t0 = Date.now();
    await unleash.admin.enable(names.dualWrite, ENV);
    await untilEvery(services, 'dual-write', t0, phaseIs('dual-write'));
    t0 = Date.now();
    await unleash.admin.enable(names.backfill, ENV);
    await untilEvery(services, 'backfilling', t0, phaseIs('backfilling'));
    await waitFor(async () => (await backfillState(id)).rowsDone >= 3000, { timeoutMs: 30_000, intervalMs: 20, description: 'some batches committed' });

    // The operator turns the backfill flag off: every instance applies `paused`, the runner stops after its batch.
    const offAt = Date.now();
    await unleash.admin.disable(names.backfill, ENV);
    const pauseMs = await untilEvery(services, 'backfill flag off → paused', offAt, phaseIs('paused'));
    const leader = currentLeader(services);
    assert.ok(leader, 'one instance leads');
    const stoppedLog = await leader.waitFor((m) => m.type === 'log' && /backfill stopped \(phase-changed\), phase paused/.test(String(m.message)), 10_000, 'the runner to stop');
    const atPause = await backfillState(id);
    const bound = await boundedRows(id, table);
    assert.ok(atPause.rowsDone >= 3000 && atPause.rowsDone < bound, `paused midway (${atPause.rowsDone} of ${bound} rows)`);
    assert.equal(atPause.rowsBackfilled, atPause.rowsDone);
    assert.equal(await phase(id), 'paused');

    // While paused: no batch commits (counters and checkpoint frozen), and the services keep serving.
    const before = await Promise.all(services.map((s) => s.report()));
    const holdUntil = Date.now() + 2500;
    while (Date.now() < holdUntil) {
      assert.deepEqual(await backfillState(id), atPause, 'nothing moves while paused');
      await sleep(100);
    }
    assert.equal(await phase(id), 'paused', 'stays paused (the flag is still off)');
    const during = await Promise.all(services.map((s) => s.report()));
    during.forEach((r, i) => {
      assert.equal(r.errors, 0, r.errorSamples.join('; '));
      assert.ok(r.ops > before[i]!.ops + 50, `${services[i]!.instanceId} kept serving while paused`);
      assert.equal(r.phase, 'paused');
    });
    assert.ok(services.every((s) => !s.messages.some((m) => m.type === 'progress' && m.at > stoppedLog.at)), 'no progress after the runner stopped');

    // Back on: resumed from the checkpoint, to completion and verify.
    const onAt = Date.now();
    await unleash.admin.enable(names.backfill, ENV);
    const resumeMs = await untilEvery(services, 'backfill flag on → backfilling again', onAt, phaseIs('backfilling'));
    await untilEvery(services, 'verified', onAt, phaseIs('verified'), 60_000);

    const final = await backfillState(id);
    assert.equal(final.done, true);
    assert.equal(final.rowsDone, bound, 'each row counted once over both runs: no batch redone');
    assert.equal(final.rowsBackfilled, bound);
    const resumed = services.flatMap((s) => s.messages).filter((m) => m.type === 'progress' && m.at >= onAt).map((m) => Number(m.rowsDone));
    const firstAfter = Math.min(...resumed);
    assert.ok(firstAfter > atPause.rowsDone && firstAfter <= atPause.rowsDone + BATCH,
      `the first batch after resume starts at the checkpoint (${atPause.rowsDone} rows done, then ${firstAfter})`);

    const moves = await events(id, 'transition');
    assert.deepEqual(moves.map((e) => e.action), ['expand', 'dual-write', 'backfill', 'pause', 'resume', 'complete-backfill', 'verify']);
    const pause = moves.find((e) => e.action === 'pause')!;
    const resume = moves.find((e) => e.action === 'resume')!;
    assert.deepEqual([pause.detail?.flag, pause.detail?.flagEnabled], [names.backfill, false], 'the pause names the flag that caused it');
    assert.deepEqual([resume.detail?.flag, resume.detail?.flagEnabled], [names.backfill, true]);
    assert.equal((await events(id, 'refused')).length, 0);
    await stopAndCheckWrites(services, table);
    timings.push(`pause: flag off → every instance paused ${pauseMs.join('/')} ms; flag on → backfilling ${resumeMs.join('/')} ms; paused at ${atPause.rowsDone} of ${bound} rows`);
  });

  it('lets another service process take over when the leader is SIGKILLed mid-backfill: it continues from the checkpoint, redoes no batch', async () => {
    const id = 'ops-kill';
    const table = 'orders_ops_kill';
    const ROWS = 60_000;
    const BATCH = 500;
    const input = amountInput(id, table, { batch: { size: BATCH, targetBatchMs: 0, pauseMs: 20 } });
    const names = flagNames(id);
    await prepare(input, table, ROWS);
    const services = await startServices(input, ['kill-a', 'kill-b'], ROWS);
    const doomed = await waitFor(() => currentLeader(services), { timeoutMs: 10_000, description: 'a leader' });
    const survivor = services.find((s) => s !== doomed)!;

    let t0 = Date.now();
    await unleash.admin.enable(names.dualWrite, ENV);
    await untilEvery(services, 'dual-write', t0, phaseIs('dual-write'));
    t0 = Date.now();
    await unleash.admin.enable(names.backfill, ENV);
    await untilEvery(services, 'backfilling', t0, phaseIs('backfilling'));
    const lastReported = Number((await doomed.waitFor((m) => m.type === 'progress' && Number(m.rowsDone) >= 5000, 30_000, 'rows backfilled')).rowsDone);
    assert.ok(!survivor.messages.some((m) => m.type === 'progress'), 'only the leader runs the backfill');

    const since = survivor.messages.length;
    await doomed.kill();
    const killedAt = Date.now();
    assert.equal(doomed.child.signalCode, 'SIGKILL');
    const lead = await survivor.waitFor((m) => m.type === 'leader' && m.leader === true, 10_000, 'the survivor to take over', since);
    const takeoverMs = lead.at - killedAt;
    await survivor.waitFor(phaseIs('verified'), 60_000, 'verified', since);
    const doneMs = Date.now() - killedAt;

    // Continued, not restarted: the survivor's first batch starts at the committed checkpoint (at or after what
    // the dead leader last reported), and each row was counted once over both runs.
    const bound = await boundedRows(id, table);
    const final = await backfillState(id);
    assert.equal(final.done, true);
    assert.equal(final.rowsDone, bound, 'no committed batch done again');
    assert.equal(final.rowsBackfilled, bound);
    const survivorProgress = survivor.messages.filter((m) => m.type === 'progress').map((m) => Number(m.rowsDone));
    const firstBySurvivor = Math.min(...survivorProgress);
    assert.ok(firstBySurvivor - BATCH >= lastReported && firstBySurvivor < bound, `resumed after row ${firstBySurvivor - BATCH} (the dead leader reported ${lastReported})`);
    assert.equal(await wrongAmountRows(suite.knex, table), 0, 'no row wrong');

    const moves = await events(id, 'transition');
    assert.deepEqual(moves.map((e) => [e.action, e.detail?.controller]), [
      ['expand', doomed.instanceId], ['dual-write', doomed.instanceId], ['backfill', doomed.instanceId],
      ['complete-backfill', survivor.instanceId], ['verify', survivor.instanceId],
    ], 'the phase stayed backfilling across the takeover; the survivor completed it');
    const complete = moves.find((e) => e.action === 'complete-backfill')!;
    assert.deepEqual([complete.detail?.flag, complete.detail?.flagEnabled], [names.backfill, true], 'the survivor ran it on the flag from Unleash');
    assert.ok(survivor.logs().some((l) => /leads ops-kill/.test(l)));
    await stopAndCheckWrites([survivor], table);
    timings.push(`leader killed: survivor leads ${takeoverMs} ms after SIGKILL, verified ${doneMs} ms after; resumed at row ${firstBySurvivor - BATCH} of ${bound}`);
  });

  /** Heartbeats of a service instance the test plays: on an old phase (writes the old column only) or caught up. */
  function laggingInstance(migrationId: string, instanceId: string) {
    let phase: 'expanded' | 'dual-write' = 'expanded';
    const beat = () => internalsOf(pf).store.heartbeat({
      instanceId, migrationId, phase, writesOld: true, writesNew: phase === 'dual-write', readsOld: true, readsNew: false,
    });
    const timer = setInterval(() => void beat().catch(() => undefined), 200);
    heartbeatTimers.push(timer);
    return {
      start: beat,
      catchUp: async () => {
        phase = 'dual-write';
        await beat();
      },
      /** The instance hangs or dies without a goodbye: its row stays, its heartbeat ages. */
      vanish: () => clearInterval(timer),
    };
  }

  it('with the sync trigger off, holds the backfill for an instance on an old phase (refused once, naming it) until it catches up', async () => {
    const id = 'ops-lag';
    const table = 'orders_ops_lag';
    const ROWS = 5000;
    const input = amountInput(id, table, { sync: { trigger: false }, batch: { size: 1000, targetBatchMs: 0, pauseMs: 5 } });
    const names = flagNames(id);
    await prepare(input, table, ROWS);
    const [svc] = await startServices(input, ['lag-svc'], ROWS, { PF_TTL_MS: '1500' });
    const services = [svc!];

    let t0 = Date.now();
    await unleash.admin.enable(names.dualWrite, ENV);
    await untilEvery(services, 'dual-write', t0, phaseIs('dual-write'));
    const lagging = laggingInstance(id, 'lag-old-instance');
    await lagging.start();
    t0 = Date.now();
    await unleash.admin.enable(names.backfill, ENV);
    await waitFor(async () => (await events(id, 'refused')).length > 0, { timeoutMs: 20_000, description: 'the refusal' });
    const refusedMs = Date.now() - t0;
    await sleep(3 * REFRESH_MS); // three more polls of Unleash and six periodic passes: still one refusal
    const refused = await events(id, 'refused');
    assert.equal(refused.length, 1, JSON.stringify(refused));
    assert.equal(refused[0]!.action, 'backfill');
    assert.match(refused[0]!.reason!, /do not write both columns yet: lag-old-instance$/);
    assert.equal(refused[0]!.detail?.flag, names.backfill);
    assert.equal(svc!.logs('warn').filter((l) => /backfill refused/.test(l)).length, 1, 'logged once');
    assert.equal(await phase(id), 'dual-write', 'the backfill waits');
    const [status] = await svc!.controllerStatus();
    assert.equal(status!.lastStep?.kind, 'refuse');
    assert.deepEqual(status!.liveInstances.map((i) => i.instanceId), ['lag-old-instance', 'lag-svc']);

    // It catches up (writes both columns now): the next pass starts the backfill.
    const caughtUp = Date.now();
    await lagging.catchUp();
    const startMs = (await untilEvery(services, 'backfilling after the catch-up', caughtUp, phaseIs('backfilling')))[0]!;
    await untilEvery(services, 'verified', caughtUp, phaseIs('verified'), 60_000);
    assert.equal((await events(id, 'refused')).length, 1, 'no further refusal');
    assert.deepEqual((await events(id, 'transition')).map((e) => e.action), ['expand', 'dual-write', 'backfill', 'complete-backfill', 'verify']);
    timings.push(`lagging instance: refused ${refusedMs} ms after the flag; backfill started ${startMs} ms after it caught up`);
    await stopAndCheckWrites(services, table);
  });

  it('with the sync trigger off, starts the backfill once the lagging instance\'s heartbeat expires (TTL 1.5 s), and reports it stale', async () => {
    const id = 'ops-gone';
    const table = 'orders_ops_gone';
    const ROWS = 5000;
    const TTL_MS = 1500;
    const input = amountInput(id, table, { sync: { trigger: false }, batch: { size: 1000, targetBatchMs: 0, pauseMs: 5 } });
    const names = flagNames(id);
    await prepare(input, table, ROWS);
    const [svc] = await startServices(input, ['gone-svc'], ROWS, { PF_TTL_MS: String(TTL_MS) });
    const services = [svc!];

    let t0 = Date.now();
    await unleash.admin.enable(names.dualWrite, ENV);
    await untilEvery(services, 'dual-write', t0, phaseIs('dual-write'));
    const lagging = laggingInstance(id, 'gone-old-instance');
    await lagging.start();
    t0 = Date.now();
    await unleash.admin.enable(names.backfill, ENV);
    await waitFor(async () => (await events(id, 'refused')).length > 0, { timeoutMs: 20_000, description: 'the refusal' });
    assert.equal(await phase(id), 'dual-write', 'refused while the instance is live');

    // It never catches up: it stops reporting, and the guard ignores it once its heartbeat is older than the TTL.
    lagging.vanish();
    const vanished = Date.now();
    await untilEvery(services, 'backfilling after the TTL', vanished, phaseIs('backfilling'), 20_000);
    await untilEvery(services, 'verified', vanished, phaseIs('verified'), 60_000);

    const gone = (await internalsOf(pf).store.instances(id, TTL_MS)).find((i) => i.instanceId === 'gone-old-instance')!;
    const backfill = (await events(id, 'transition')).find((e) => e.action === 'backfill')!;
    const sinceLastBeat = backfill.at.getTime() - gone.lastSeen.getTime(); // both the database's clock
    assert.ok(sinceLastBeat >= TTL_MS, `the backfill started ${sinceLastBeat} ms after the instance's last heartbeat`);
    const refused = await events(id, 'refused');
    assert.equal(refused.length, 1, 'refused once, while it was live');
    assert.match(refused[0]!.reason!, /do not write both columns yet: gone-old-instance$/);

    const [status] = await svc!.controllerStatus();
    assert.deepEqual(status!.staleInstances.map((i) => [i.instanceId, i.phase, i.writesNew]), [['gone-old-instance', 'expanded', false]], 'reported stale in status');
    assert.deepEqual(status!.liveInstances.map((i) => i.instanceId), ['gone-svc']);
    assert.equal(svc!.logs('warn').filter((l) => /instance gone-old-instance last reported at .* older than the 1500 ms TTL/.test(l)).length, 1, 'and logged once');
    await stopAndCheckWrites(services, table);
    timings.push(`heartbeat expiry: backfill started ${sinceLastBeat} ms after the lagging instance's last heartbeat (TTL ${TTL_MS} ms)`);
  });
});
