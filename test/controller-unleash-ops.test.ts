import assert from 'node:assert/strict';
import { isDeepStrictEqual } from 'node:util';
import { defineMigration } from '@phaseflag/core';
import { amountInput, holdsFor, waitFor, wrongAmountRows } from '@phaseflag/testkit';
import { ENV, currentLeader, phaseIs, useOpsSuite } from './fixtures/unleash-ops.js';

describe('operating a migration through Unleash: pause and resume, the leader killed', function () {
  this.timeout(120_000);
  const t = useOpsSuite('controller_unleash_ops');
  const { timings, prepare, startServices, untilEvery, events, phase, backfillState, boundedRows, stopAndCheckWrites } =
    t;

  it('pauses the backfill when the operator turns its flag off in Unleash, and resumes it from the checkpoint when it goes back on', async () => {
    const { unleash } = t;
    const id = 'ops-pause';
    const table = 'orders_ops_pause';
    const ROWS = 60_000;
    const BATCH = 300;
    // 200 batches with a 25 ms pause each: at least 5 s of backfill, so it is still running when the flag lands.
    const input = amountInput(id, table, { batch: { size: BATCH, targetBatchMs: 0, pauseMs: 25 } });
    const names = defineMigration(input).flags;
    await prepare(input, table, ROWS);
    const services = await startServices(input, ['pause-a', 'pause-b'], ROWS);

    let t0 = Date.now();
    await unleash.admin.enable(names.dualWrite, ENV);
    await untilEvery(services, 'dual-write', t0, phaseIs('dual-write'));
    t0 = Date.now();
    await unleash.admin.enable(names.backfill, ENV);
    await untilEvery(services, 'backfilling', t0, phaseIs('backfilling'));
    await waitFor(async () => (await backfillState(id)).rowsDone >= 3000, {
      timeoutMs: 30_000,
      intervalMs: 20,
      description: 'some batches committed',
    });

    // The operator turns the backfill flag off: every instance applies `paused`, the runner stops after its batch.
    const offAt = Date.now();
    await unleash.admin.disable(names.backfill, ENV);
    const pauseMs = await untilEvery(services, 'backfill flag off → paused', offAt, phaseIs('paused'));
    const leader = currentLeader(services);
    assert.ok(leader, 'one instance leads');
    const stoppedLog = await leader.waitFor(
      (m) => m.type === 'log' && /backfill stopped \(phase-changed\), phase paused/.test(String(m.message)),
      10_000,
      'the runner to stop',
    );
    const atPause = await backfillState(id);
    const bound = await boundedRows(id, table);
    assert.ok(
      atPause.rowsDone >= 3000 && atPause.rowsDone < bound,
      `paused midway (${atPause.rowsDone} of ${bound} rows)`,
    );
    assert.equal(atPause.rowsBackfilled, atPause.rowsDone);
    assert.equal(await phase(id), 'paused');

    // While paused: no batch commits (counters and checkpoint frozen), and the services keep serving.
    const before = await Promise.all(services.map((s) => s.report()));
    await holdsFor(async () => isDeepStrictEqual(await backfillState(id), atPause), 2500, {
      intervalMs: 100,
      description: 'nothing moves while paused',
    });
    assert.deepEqual(await backfillState(id), atPause, 'nothing moves while paused');
    assert.equal(await phase(id), 'paused', 'stays paused (the flag is still off)');
    const during = await Promise.all(services.map((s) => s.report()));
    during.forEach((r, i) => {
      assert.equal(r.errors, 0, r.errorSamples.join('; '));
      assert.ok(r.ops > before[i]!.ops + 50, `${services[i]!.instanceId} kept serving while paused`);
      assert.equal(r.phase, 'paused');
    });
    assert.ok(
      services.every((s) => !s.messages.some((m) => m.type === 'progress' && m.at > stoppedLog.at)),
      'no progress after the runner stopped',
    );

    // Back on: resumed from the checkpoint, to completion and verify.
    const onAt = Date.now();
    await unleash.admin.enable(names.backfill, ENV);
    const resumeMs = await untilEvery(services, 'backfill flag on → backfilling again', onAt, phaseIs('backfilling'));
    await untilEvery(services, 'verified', onAt, phaseIs('verified'), 60_000);

    const final = await backfillState(id);
    assert.equal(final.done, true);
    assert.equal(final.rowsDone, bound, 'each row counted once over both runs: no batch redone');
    assert.equal(final.rowsBackfilled, bound);
    const resumed = services
      .flatMap((s) => s.messages)
      .filter((m) => m.type === 'progress' && m.at >= onAt)
      .map((m) => Number(m.rowsDone));
    const firstAfter = Math.min(...resumed);
    assert.ok(
      firstAfter > atPause.rowsDone && firstAfter <= atPause.rowsDone + BATCH,
      `the first batch after resume starts at the checkpoint (${atPause.rowsDone} rows done, then ${firstAfter})`,
    );

    const moves = await events(id, 'transition');
    assert.deepEqual(
      moves.map((e) => e.action),
      ['expand', 'dual-write', 'backfill', 'pause', 'resume', 'complete-backfill', 'verify'],
    );
    const pause = moves.find((e) => e.action === 'pause')!;
    const resume = moves.find((e) => e.action === 'resume')!;
    assert.deepEqual(
      [pause.detail?.flag, pause.detail?.flagEnabled],
      [names.backfill, false],
      'the pause names the flag that caused it',
    );
    assert.deepEqual([resume.detail?.flag, resume.detail?.flagEnabled], [names.backfill, true]);
    assert.equal((await events(id, 'refused')).length, 0);
    await stopAndCheckWrites(services, table);
    timings.push(
      `pause: flag off → every instance paused ${pauseMs.join('/')} ms; flag on → backfilling ${resumeMs.join('/')} ms; paused at ${atPause.rowsDone} of ${bound} rows`,
    );
  });

  it('lets another service process take over when the leader is SIGKILLed mid-backfill: it continues from the checkpoint, redoes no batch', async () => {
    const { unleash, suite } = t;
    const id = 'ops-kill';
    const table = 'orders_ops_kill';
    const ROWS = 60_000;
    const BATCH = 500;
    const input = amountInput(id, table, { batch: { size: BATCH, targetBatchMs: 0, pauseMs: 20 } });
    const names = defineMigration(input).flags;
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
    const lastReported = Number(
      (await doomed.waitFor((m) => m.type === 'progress' && Number(m.rowsDone) >= 5000, 30_000, 'rows backfilled'))
        .rowsDone,
    );
    assert.ok(!survivor.messages.some((m) => m.type === 'progress'), 'only the leader runs the backfill');

    const since = survivor.messages.length;
    await doomed.kill();
    const killedAt = Date.now();
    assert.equal(doomed.child.signalCode, 'SIGKILL');
    const lead = await survivor.waitFor(
      (m) => m.type === 'leader' && m.leader === true,
      10_000,
      'the survivor to take over',
      since,
    );
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
    assert.ok(
      firstBySurvivor - BATCH >= lastReported && firstBySurvivor < bound,
      `resumed after row ${firstBySurvivor - BATCH} (the dead leader reported ${lastReported})`,
    );
    assert.equal(await wrongAmountRows(suite.knex, table), 0, 'no row wrong');

    const moves = await events(id, 'transition');
    assert.deepEqual(
      moves.map((e) => [e.action, e.detail?.controller]),
      [
        ['expand', doomed.instanceId],
        ['dual-write', doomed.instanceId],
        ['backfill', doomed.instanceId],
        ['complete-backfill', survivor.instanceId],
        ['verify', survivor.instanceId],
      ],
      'the phase stayed backfilling across the takeover; the survivor completed it',
    );
    const complete = moves.find((e) => e.action === 'complete-backfill')!;
    assert.deepEqual(
      [complete.detail?.flag, complete.detail?.flagEnabled],
      [names.backfill, true],
      'the survivor ran it on the flag from Unleash',
    );
    assert.ok(survivor.logs().some((l) => /leads ops-kill/.test(l)));
    await stopAndCheckWrites([survivor], table);
    timings.push(
      `leader killed: survivor leads ${takeoverMs} ms after SIGKILL, verified ${doneMs} ms after; resumed at row ${firstBySurvivor - BATCH} of ${bound}`,
    );
  });
});
