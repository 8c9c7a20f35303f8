import assert from 'node:assert/strict';
import { defineMigration } from '@phaseflag/core';
import { amountInput, holdsFor, waitFor } from '@phaseflag/testkit';
import { internalsOf } from '@phaseflag/postgres/internal';
import { ENV, REFRESH_MS, phaseIs, useOpsSuite } from './fixtures/unleash-ops.js';

describe('operating a migration through Unleash: an instance that lags behind (sync trigger off)', function () {
  this.timeout(120_000);
  const t = useOpsSuite('controller_unleash_lag');
  const { timings, prepare, startServices, untilEvery, events, phase, stopAndCheckWrites, laggingInstance } = t;

  it('with the sync trigger off, holds the backfill for an instance on an old phase (refused once, naming it) until it catches up', async () => {
    const { unleash } = t;
    const id = 'ops-lag';
    const table = 'orders_ops_lag';
    const ROWS = 5000;
    const input = amountInput(id, table, {
      sync: { trigger: false },
      batch: { size: 1000, targetBatchMs: 0, pauseMs: 5 },
    });
    const names = defineMigration(input).flags;
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
    await waitFor(async () => (await events(id, 'refused')).length > 0, {
      timeoutMs: 20_000,
      description: 'the refusal',
    });
    const refusedMs = Date.now() - t0;
    // Three more polls of Unleash and six periodic passes: still one refusal.
    await holdsFor(async () => (await events(id, 'refused')).length === 1, 3 * REFRESH_MS, {
      intervalMs: 200,
      description: 'one refusal',
    });
    const refused = await events(id, 'refused');
    assert.equal(refused.length, 1, JSON.stringify(refused));
    assert.equal(refused[0]!.action, 'backfill');
    assert.match(refused[0]!.reason!, /do not write both columns yet: lag-old-instance$/);
    assert.equal(refused[0]!.detail?.flag, names.backfill);
    assert.equal(svc!.logs('warn').filter((l) => /backfill refused/.test(l)).length, 1, 'logged once');
    assert.equal(await phase(id), 'dual-write', 'the backfill waits');
    const [status] = await svc!.controllerStatus();
    assert.equal(status!.lastStep?.kind, 'refuse');
    assert.deepEqual(
      status!.liveInstances.map((i) => i.instanceId),
      ['lag-old-instance', 'lag-svc'],
    );

    // It catches up (writes both columns now): the next pass starts the backfill.
    const caughtUp = Date.now();
    await lagging.catchUp();
    const startMs = (
      await untilEvery(services, 'backfilling after the catch-up', caughtUp, phaseIs('backfilling'))
    )[0]!;
    await untilEvery(services, 'verified', caughtUp, phaseIs('verified'), 60_000);
    assert.equal((await events(id, 'refused')).length, 1, 'no further refusal');
    assert.deepEqual(
      (await events(id, 'transition')).map((e) => e.action),
      ['expand', 'dual-write', 'backfill', 'complete-backfill', 'verify'],
    );
    timings.push(
      `lagging instance: refused ${refusedMs} ms after the flag; backfill started ${startMs} ms after it caught up`,
    );
    await stopAndCheckWrites(services, table);
  });

  it("with the sync trigger off, starts the backfill once the lagging instance's heartbeat expires (TTL 1.5 s), and reports it stale", async () => {
    const { unleash, pf } = t;
    const id = 'ops-gone';
    const table = 'orders_ops_gone';
    const ROWS = 5000;
    const TTL_MS = 1500;
    const input = amountInput(id, table, {
      sync: { trigger: false },
      batch: { size: 1000, targetBatchMs: 0, pauseMs: 5 },
    });
    const names = defineMigration(input).flags;
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
    await waitFor(async () => (await events(id, 'refused')).length > 0, {
      timeoutMs: 20_000,
      description: 'the refusal',
    });
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
    assert.deepEqual(
      status!.staleInstances.map((i) => [i.instanceId, i.phase, i.writesNew]),
      [['gone-old-instance', 'expanded', false]],
      'reported stale in status',
    );
    assert.deepEqual(
      status!.liveInstances.map((i) => i.instanceId),
      ['gone-svc'],
    );
    assert.equal(
      svc!
        .logs('warn')
        .filter((l) => /instance gone-old-instance last reported at .* older than the 1500 ms TTL/.test(l)).length,
      1,
      'and logged once',
    );
    await stopAndCheckWrites(services, table);
    timings.push(
      `heartbeat expiry: backfill started ${sinceLastBeat} ms after the lagging instance's last heartbeat (TTL ${TTL_MS} ms)`,
    );
  });
});
