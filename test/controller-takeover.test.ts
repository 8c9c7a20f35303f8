import assert from 'node:assert/strict';
import { ATTR, CONTROLLER_SPAN, SPAN, StaticFlagSource, defineMigration, type Logger } from '@phaseflag/core';
import { Phaseflag } from '@phaseflag/postgres';
import { internalsOf } from '@phaseflag/postgres/internal';
import {
  amountInput,
  captureSpans,
  createAmountTable,
  createSuiteSchema,
  waitFor,
  wrongAmountRows,
  type Suite,
} from '@phaseflag/testkit';
import { ServiceProcess } from './fixtures/service-process.js';

const ROWS = 40_000;

describe('controller leadership across processes', function () {
  this.timeout(180_000);
  const spans = captureSpans();
  let suite: Suite;
  let pf: Phaseflag;
  let child: ServiceProcess | undefined;
  const logs: string[] = [];
  const logger: Logger = {
    debug: () => undefined,
    info: (m) => logs.push(m),
    warn: (m) => logs.push(m),
    error: (m) => logs.push(m),
  };

  before(async () => {
    suite = await createSuiteSchema('controller_takeover');
    pf = new Phaseflag({ knex: suite.knex, stateSchema: suite.stateSchema, pollIntervalMs: 100, graceMs: 200, logger });
    await pf.install();
  });
  after(async () => {
    await child?.kill();
    await pf?.close();
    await suite?.cleanup();
  });

  it('another instance finishes the backfill from the checkpoint after the leader is killed with SIGKILL mid-backfill', async () => {
    const id = 'takeover';
    await createAmountTable(suite.knex, 'orders_takeover', ROWS);
    // Slow enough to strike mid-way: 500-row batches with a 10 ms pause.
    const input = amountInput(id, 'orders_takeover', { batch: { size: 500, targetBatchMs: 0, pauseMs: 10 } });
    const names = defineMigration(input).flags;
    const on = { [names.dualWrite]: true, [names.backfill]: true, [names.readNew]: false, [names.contract]: false };
    child = await ServiceProcess.start({
      PF_CONNECTION: suite.connectionString,
      PF_STATE_SCHEMA: suite.stateSchema,
      PF_MIGRATION: JSON.stringify(input),
      PF_INSTANCE_ID: 'svc-doomed',
      PF_FLAGS: 'static',
      PF_STATIC_FLAGS: JSON.stringify(on),
      PF_TRAFFIC: '1',
      PF_MAX_ID: String(ROWS),
      PF_INTERVAL_MS: '200',
      PF_POLL_MS: '100',
    });
    await child.waitFor((m) => m.type === 'leader' && m.leader === true, 30_000, 'the child to lead');

    // The survivor runs beside it as a follower, retrying the leadership every 200 ms.
    const survivor = pf.controller(pf.migration(input), {
      flags: new StaticFlagSource(on),
      instanceId: 'svc-survivor',
      intervalMs: 200,
      logger,
    });
    await survivor.start();
    assert.equal(survivor.isLeader(id), false, 'the child leads, the survivor follows');

    const lastReported = Number(
      (await child.waitFor((m) => m.type === 'progress' && Number(m.rowsDone) >= 5000, 60_000, 'rows backfilled'))
        .rowsDone,
    );
    spans.reset();
    await child.kill();
    const killedAt = Date.now();
    assert.equal(child.child.signalCode, 'SIGKILL');

    await waitFor(() => survivor.isLeader(id), { timeoutMs: 10_000, description: 'the survivor to take over' });
    const takeoverMs = Date.now() - killedAt;
    await waitFor(async () => (await internalsOf(pf).store.get(id))?.phase === 'verified', {
      timeoutMs: 60_000,
      description: 'verified',
    });
    await survivor.stop();

    // Resumed, not restarted: the survivor's first batch starts at the committed checkpoint, and each row was
    // counted once over both runs.
    const batches = spans
      .byName(SPAN.backfillBatch)
      .filter((s) => s.attributes[ATTR.migrationId] === id && s.attributes['phaseflag.batch.committed'] === true);
    const firstKey = JSON.parse(String(batches[0]!.attributes[ATTR.keyFrom])) as unknown[];
    const checkpoint = Number(firstKey[0]);
    assert.ok(
      checkpoint >= lastReported && checkpoint < ROWS,
      `resumed after ${checkpoint} (the child reported ${lastReported})`,
    );
    // The range was bounded when the backfill started: the seed plus what the child's traffic inserted before.
    const bounded = (
      await suite.knex.raw(
        `SELECT sum(r.rows_done)::int AS done, (SELECT count(*)::int FROM orders_takeover WHERE id <= max((r.upper_key->>0)::bigint)) AS rows
         FROM ??.backfill_ranges r WHERE r.migration_id = ?`,
        [suite.stateSchema, id],
      )
    ).rows[0];
    assert.ok(bounded.rows >= ROWS);
    const scannedBySurvivor = batches.reduce((n, s) => n + Number(s.attributes[ATTR.rows]), 0);
    assert.equal(scannedBySurvivor, bounded.rows - checkpoint, 'no committed batch done again');
    assert.equal(bounded.done, bounded.rows, 'each row counted once over both runs');
    assert.equal(await wrongAmountRows(suite.knex, 'orders_takeover'), 0);

    const events = (await pf.migration(input).status()).events.filter((e) => e.kind === 'transition');
    const by = Object.fromEntries(events.map((e) => [e.action, e.detail?.controller]));
    assert.deepEqual([by.expand, by['dual-write'], by.backfill], ['svc-doomed', 'svc-doomed', 'svc-doomed']);
    assert.deepEqual([by['complete-backfill'], by.verify], ['svc-survivor', 'svc-survivor']);
    assert.ok(logs.some((l) => /svc-survivor leads takeover/.test(l)));

    const leader = spans
      .byName(CONTROLLER_SPAN.leader)
      .find((s) => s.attributes['phaseflag.controller.instance_id'] === 'svc-survivor');
    const complete = spans.byName(SPAN.transition).find((s) => s.attributes[ATTR.action] === 'complete-backfill');
    assert.ok(
      leader && complete && complete.links.some((l) => l.context.spanId === leader.spanContext().spanId),
      'the completion links to the new leader',
    );
    console.log(
      `      (takeover ${takeoverMs} ms after SIGKILL with intervalMs 200; resumed at row ${checkpoint} of ${ROWS})`,
    );
  });
});
