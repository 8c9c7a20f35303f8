import assert from 'node:assert/strict';
import { ATTR, METRIC, SPAN } from '@phaseflag/core';
import {
  canStartReplica,
  captureMetrics,
  captureSpans,
  holdsFor,
  replicaUnavailableReason,
  startReplica,
  waitFor,
  type ReplicaPair,
} from '@phaseflag/testkit';
import knex, { type Knex } from 'knex';
import { runBackfill, type BackfillProgress, type BackfillResult } from '../src/operations/backfill/index.js';
import { createContext, type ExecutorContext } from '../src/context.js';
import { installStateStore } from '../src/store/installer.js';
import {
  createUsers,
  rangeTotals,
  registerMigration,
  resolveFor,
  usersMigration,
  wrongRows,
  type LogLine,
} from './fixtures/backfill-suite.js';

describe('backfill with a streaming replica', function () {
  this.timeout(180_000);
  let pair: ReplicaPair | undefined;
  let primary: Knex;
  let replica: Knex;
  let ctx: ExecutorContext;
  const logs: LogLine[] = [];
  const metrics = captureMetrics();
  const spans = captureSpans();

  before(async function () {
    if (!canStartReplica()) {
      // Mocha has no skip reason; print it so a skipped suite is never mistaken for a pass.
      console.log(`      (skipped: ${replicaUnavailableReason()})`);
      this.skip();
    }
    pair = await startReplica();
    primary = knex({ client: 'pg', connection: pair.primaryUrl, pool: { min: 0, max: 6 } });
    replica = knex({ client: 'pg', connection: pair.replicaUrl, pool: { min: 0, max: 2 } });
    ctx = createContext({
      knex: primary,
      stateSchema: 'pf_state',
      actor: 'test',
      logger: {
        debug() {},
        info: (message, fields) => logs.push({ level: 'info', message, fields }),
        warn: (message, fields) => logs.push({ level: 'warn', message, fields }),
        error() {},
      },
    });
    await installStateStore(ctx);
  });

  after(async () => {
    await primary?.destroy();
    await replica?.destroy();
    await pair?.stop();
  });

  it('holds back while the replica does not replay, and finishes once it does', async () => {
    const p = pair!;
    await createUsers(primary, 'users_rep', 20_000);
    const r = await resolveFor(primary, usersMigration('users-rep', 'users_rep'));
    await registerMigration(ctx, r);
    await p.waitForCatchUp();
    spans.reset();
    await metrics.reset();

    await p.pauseReplay();
    const progress: BackfillProgress[] = [];
    let settled: BackfillResult | undefined;
    const running = runBackfill(ctx, r, {
      batch: { size: 1000, targetBatchMs: 0 },
      throttle: { maxReplicaLagBytes: 64 * 1024, checkIntervalMs: 100 },
      onProgress: (x) => progress.push(x),
    }).then((x) => (settled = x));

    // The first batch alone writes more than 64 kB of WAL; after it the lag stays above the limit.
    await waitFor(() => logs.some((l) => /backfill throttled: replica .* bytes behind/.test(l.message)), {
      timeoutMs: 20_000,
      description: 'throttling to start',
    });
    const early = await rangeTotals(ctx, 'users-rep');
    await holdsFor(
      async () => settled === undefined && (await rangeTotals(ctx, 'users-rep')).batches === early.batches,
      1500,
      { intervalMs: 100, description: 'the run waiting, with no batch committed, while the replica is paused' },
    );
    const held = await rangeTotals(ctx, 'users-rep');
    assert.equal(settled, undefined, 'the run is still waiting');
    assert.equal(held.batches, early.batches, 'no batch commits while the replica is paused');
    assert.ok(held.batches <= 2, `few batches before throttling: ${held.batches}`);
    assert.equal(progress[progress.length - 1]!.throttled, true);

    await p.resumeReplay();
    const result = await running;

    assert.equal(result.completed, true);
    assert.ok(result.throttledMs >= 1500, `throttled ${result.throttledMs} ms`);
    const throttledBatches = spans.byName(SPAN.backfillBatch).filter((b) => b.attributes[ATTR.throttled] === true);
    assert.ok(throttledBatches.some((b) => Number(b.attributes[ATTR.throttledMs]) >= 1500));
    const run = spans.byName(SPAN.backfill)[0]!;
    assert.ok(run.events.some((e) => e.name === 'throttle.start') && run.events.some((e) => e.name === 'throttle.end'));
    assert.ok(Number(run.attributes[ATTR.throttledMs]) >= 1500);
    assert.ok((await metrics.histogramCount(METRIC.throttleWait, { [ATTR.migrationId]: 'users-rep' })) >= 1);
    // One line when a stretch starts and one when it ends. With a limit smaller than one batch's WAL, each batch
    // after the resume opens a short stretch of its own until the replica has replayed it.
    const starts = logs.filter((l) => /backfill throttled/.test(l.message)).length;
    const ends = logs.filter((l) => /no longer throttled/.test(l.message)).length;
    assert.ok(starts >= 1 && starts === ends, `${starts} starts, ${ends} ends`);
    assert.equal(await wrongRows(primary, 'users_rep', 'email_lower', 'lower(email)'), 0);
    await p.waitForCatchUp();
    assert.equal(await wrongRows(replica, 'users_rep', 'email_lower', 'lower(email)'), 0);
  });
});
