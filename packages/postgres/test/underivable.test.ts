import assert from 'node:assert/strict';
import { SpanStatusCode } from '@opentelemetry/api';
import { ATTR, METRIC, SPAN, defineMigration, isPhaseflagError } from '@phaseflag/core';
import { captureMetrics, captureSpans, type Suite } from '@phaseflag/testkit';
import type { Knex } from 'knex';
import type { Phaseflag } from '../src/index.js';
import { internalsOf } from '../src/internal.js';
import {
  qtyMigration,
  rejectsWith,
  setupUnderivableSuite,
  type UnderivableSuite,
} from './fixtures/underivable-suite.js';

/**
 * A backfill expression that cannot map some values ('N/A'::int, an unmapped CASE into smallint) must never make
 * the application's writes fail: the old column stays authoritative, the row is recorded, shown by status and
 * verify, and blocks verified until it is fixed. Here: what preflight, verify and the backfill do with such rows
 * (underivable-live.test.ts has the application writing under load).
 */
describe('rows the expression cannot derive', function () {
  this.timeout(120_000);
  const metrics = captureMetrics();
  const spans = captureSpans();
  let s: UnderivableSuite | undefined;
  let suite: Suite;
  let pf: Phaseflag;
  let app: Knex;
  let stockTable: UnderivableSuite['stockTable'];
  let keys: UnderivableSuite['keys'];

  before(async () => {
    s = await setupUnderivableSuite('underivable');
    ({ suite, pf, app, stockTable, keys } = s);
  });
  after(async () => {
    await s?.close();
  });

  it('preflight finds the planted row and dual-write refuses until the failures are accepted', async () => {
    await stockTable('stock_pre', 3000, { 777: 'N/A' });
    const m = pf.migration(qtyMigration('pre', 'stock_pre'));
    await m.expand();
    const found = await m.preflight({ batchSize: 400 });
    assert.deepEqual(
      {
        rows: found.rowsChecked,
        failures: found.failures,
        complete: found.complete,
        roundTrip: found.roundTripMismatches,
      },
      { rows: 3000, failures: 1, complete: true, roundTrip: 0 },
    );
    assert.deepEqual(found.failedRows, [
      { key: [777], oldValue: 'N/A', error: 'invalid input syntax for type integer: "N/A"' },
    ]);
    assert.ok(found.durationMs >= 0);

    await rejectsWith(m.startDualWrite(), 'PF_PREFLIGHT_FAILED');
    assert.equal((await internalsOf(pf).store.get('pre'))!.phase, 'expanded');
    const refused = (await internalsOf(pf).store.events('pre')).filter((e) => e.kind === 'refused');
    assert.match(refused.at(-1)!.reason!, /preflight found 1 row\(s\).*\[777\].*"N\/A"/);
    assert.match(String(refused.at(-1)!.detail?.hint), /--accept-preflight-failures/);
    assert.equal((await internalsOf(pf).store.get('pre'))!.preflight_result?.failures, 1);

    await m.startDualWrite({ acceptPreflightFailures: true });
    assert.equal((await internalsOf(pf).store.get('pre'))!.phase, 'dual-write');
    assert.deepEqual(await keys('pre'), [{ key: [777], source: 'preflight' }]);
    // The backfill leaves the accepted row alone instead of stopping on it; verify refuses verified while it is there.
    const run = await m.backfill();
    assert.equal(run.phase, 'backfilled');
    assert.equal((await suite.knex.raw('SELECT count(*)::int AS n FROM stock_pre WHERE qty_int IS NULL')).rows[0].n, 1);
    await rejectsWith(m.verify(), 'PF_VERIFY_FAILED');
    assert.equal((await internalsOf(pf).store.get('pre'))!.phase, 'backfilled');
  });

  it('a CASE into smallint that meets an unmapped value: writes succeed, the row is recorded and blocks verified', async () => {
    await suite.knex.raw(
      "CREATE TABLE levels (id bigserial PRIMARY KEY, level text NOT NULL); INSERT INTO levels (level) SELECT CASE WHEN g % 2 = 0 THEN 'low' ELSE 'high' END FROM generate_series(1, 2000) g",
    );
    const m = pf.migration(
      defineMigration({
        id: 'lvl',
        table: 'levels',
        oldColumn: 'level',
        newColumn: { name: 'level_n', type: 'smallint' },
        backfill: "CASE level WHEN 'low' THEN 1 WHEN 'high' THEN 2 ELSE level::int END",
        reverse: "CASE level_n WHEN 1 THEN 'low' WHEN 2 THEN 'high' END",
      }),
    );
    await m.expand();
    await m.startDualWrite();
    await app.raw("UPDATE levels SET level = 'medium' WHERE id = 10");
    await app.raw("INSERT INTO levels (level) VALUES ('extreme')");
    await m.backfill();
    assert.deepEqual(
      (await keys('lvl')).map((k: { key: unknown }) => k.key),
      [[10], [2001]],
    );
    await rejectsWith(m.verify(), 'PF_VERIFY_FAILED');
    await rejectsWith(m.verify(), 'PF_VERIFY_FAILED'); // still there: nothing fixed
    await app.raw("UPDATE levels SET level = 'low' WHERE id IN (10, 2001)");
    assert.equal((await m.verify()).clean, true);
  });

  it('a backfill that meets a row nobody recorded stops naming it, pauses the migration, and resumes once it is fixed', async () => {
    await stockTable('stock_bf', 20_000, {});
    const m = pf.migration(qtyMigration('bf', 'stock_bf'));
    await m.expand();
    await m.startDualWrite();
    // Written while the trigger was off (a restore, a bulk load with triggers disabled).
    await suite.knex.raw('ALTER TABLE stock_bf DISABLE TRIGGER USER');
    await suite.knex.raw("UPDATE stock_bf SET qty = 'N/A' WHERE id = 15000");
    await suite.knex.raw('ALTER TABLE stock_bf ENABLE TRIGGER USER');
    spans.reset();
    let failure: unknown;
    await m.backfill().catch((e) => {
      failure = e;
    });
    assert.ok(isPhaseflagError(failure, 'PF_BACKFILL_ROW_FAILED'), String(failure));
    const error = failure as import('@phaseflag/core').BackfillRowFailedError;
    assert.match(error.message, /key \[15000\].*"N\/A".*invalid input syntax for type integer/);
    assert.deepEqual(
      { ...(error.value as Record<string, unknown>), rows: undefined },
      {
        key: [15000],
        oldValue: 'N/A',
        error: 'invalid input syntax for type integer: "N/A"',
        sqlstate: '22P02',
        rows: undefined,
        rowsUpdated: error.rowsUpdated,
      },
    );
    assert.ok(error.rowsUpdated >= 14_000, `rows updated before the stop: ${error.rowsUpdated}`);

    const row = (await internalsOf(pf).store.get('bf'))!;
    assert.equal(row.phase, 'paused');
    const events = await internalsOf(pf).store.events('bf');
    assert.ok(
      events.some(
        (e) =>
          e.kind === 'backfill' &&
          e.action === 'backfill-failed' &&
          (e.detail as { key: unknown }).key?.toString() === '15000',
      ),
    );
    const pause = events.filter((e) => e.kind === 'transition' && e.action === 'pause').at(-1)!;
    assert.match(pause.reason!, /row \[15000\].*cannot be derived/);
    const [span] = spans.byName(SPAN.backfill);
    assert.equal(span!.status.code, SpanStatusCode.ERROR);
    assert.deepEqual(await keys('bf'), [{ key: [15000], source: 'backfill' }]);
    assert.equal(
      await metrics.sum(METRIC.underivableRecorded, { [ATTR.migrationId]: 'bf', [ATTR.source]: 'backfill' }),
      1,
    );

    // Not fixed: a rerun stops on it again. Fixed: the rerun resumes and completes.
    await rejectsWith(m.backfill(), 'PF_BACKFILL_ROW_FAILED');
    await suite.knex.raw("UPDATE stock_bf SET qty = '150' WHERE id = 15000");
    const resumed = await m.backfill();
    assert.equal(resumed.phase, 'backfilled');
    assert.equal((await m.verify()).clean, true);
  });
});
