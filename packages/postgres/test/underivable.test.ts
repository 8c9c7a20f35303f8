import assert from 'node:assert/strict';
import { SpanStatusCode } from '@opentelemetry/api';
import {
  ATTR,
  METRIC,
  SPAN,
  StaticFlagSource,
  defineMigration,
  isPhaseflagError,
  type MigrationInput,
} from '@phaseflag/core';
import {
  captureMetrics,
  captureSpans,
  createSuiteSchema,
  startLoad,
  type LoadOp,
  type Suite,
} from '@phaseflag/testkit';
import type { Knex } from 'knex';
import { Phaseflag } from '../src/index.js';
import { internalsOf } from '../src/internal.js';

/**
 * A backfill expression that cannot map some values ('N/A'::int, an unmapped CASE into smallint) must never make
 * the application's writes fail: the old column stays authoritative, the row is recorded, shown by status and
 * verify, and blocks verified until it is fixed. The writers here are the application's own plain SQL on a pool
 * of its own, and the router with knex, under concurrent load.
 */
describe('rows the expression cannot derive', function () {
  this.timeout(120_000);
  const metrics = captureMetrics();
  const spans = captureSpans();
  let suite: Suite;
  let pf: Phaseflag;
  let app: Knex;

  before(async () => {
    suite = await createSuiteSchema('underivable', { pool: { min: 0, max: 12 } });
    pf = new Phaseflag({ knex: suite.knex, stateSchema: suite.stateSchema, pollIntervalMs: 100, graceMs: 0 });
    await pf.install();
    app = suite.newKnex({ pool: { min: 0, max: 6 } });
  });
  after(async () => {
    await pf?.close();
    await app?.destroy();
    await suite?.cleanup();
  });

  async function stockTable(table: string, rows: number, planted: Record<number, string>): Promise<void> {
    await suite.knex.raw('CREATE TABLE ?? (id bigserial PRIMARY KEY, qty text NOT NULL, note text)', [table]);
    await suite.knex.raw("INSERT INTO ?? (qty, note) SELECT (g % 500)::text, 'n' FROM generate_series(1, ?::int) g", [
      table,
      rows,
    ]);
    for (const [id, value] of Object.entries(planted))
      await suite.knex.raw('UPDATE ?? SET qty = ? WHERE id = ?', [table, value, Number(id)]);
    await suite.knex.raw('ANALYZE ??', [table]);
  }
  const qtyMigration = (id: string, table: string, extra: Partial<MigrationInput> = {}) =>
    defineMigration({
      id,
      table,
      oldColumn: 'qty',
      newColumn: { name: 'qty_int', type: 'integer' },
      backfill: 'qty::int',
      reverse: 'qty_int::text',
      batch: { size: 500, targetBatchMs: 0 },
      ...extra,
    });
  const rejectsWith = async (p: Promise<unknown>, code: string) => {
    await assert.rejects(p, (e: unknown) => isPhaseflagError(e) && e.code === code);
  };
  const keys = async (id: string) =>
    (
      await suite.knex.raw('SELECT key, source FROM ??.underivable WHERE migration_id = ? ORDER BY key', [
        suite.stateSchema,
        id,
      ])
    ).rows;

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

  it('never fails an application write (plain SQL and the router, under load); the rows are recorded and block verified until fixed', async () => {
    await stockTable('stock_live', 5000, { 777: 'N/A' });
    const flags = new StaticFlagSource({
      'live.dual-write': true,
      'live.backfill': true,
      'live.read-new': false,
      'live.contract': false,
    });
    const m = pf.migration(qtyMigration('live', 'stock_live'));
    await m.expand();
    await m.startDualWrite({ acceptPreflightFailures: true });
    const router = await m.router(flags, { heartbeatMs: 0 });
    const rand = (n: number) => 1 + Math.floor(Math.random() * n);
    const ops: LoadOp[] = [
      {
        name: 'sql-update',
        weight: 2,
        run: async (_i, db) => {
          await db.raw('UPDATE stock_live SET qty = ? WHERE id = ?', [String(rand(900)), 1000 + rand(4000)]);
        },
      },
      {
        name: 'sql-touch-planted',
        weight: 1,
        run: async (_i, db) => {
          await db.raw("UPDATE stock_live SET note = 'n' || ? WHERE id = 777", [rand(9)]);
        },
      },
      {
        name: 'router-update',
        weight: 2,
        run: async (_i, db) => {
          await db('stock_live')
            .update(router.row({ qty: String(rand(900)) }))
            .where('id', 1000 + rand(4000));
        },
      },
      {
        name: 'router-insert',
        weight: 1,
        run: async (_i, db) => {
          await db('stock_live').insert(router.row({ qty: String(rand(900)) }));
        },
      },
    ];
    const load = startLoad({ knex: app, concurrency: 4, ops });
    try {
      await app.raw("UPDATE stock_live SET qty = 'lots' WHERE id = 5");
      await app.raw("INSERT INTO stock_live (id, qty) VALUES (100001, 'x')");
      await app.raw("UPDATE stock_live SET note = 'unrelated' WHERE id = 777");
      await app.raw('UPDATE stock_live SET qty = qty WHERE id = 777');
      await app('stock_live')
        .update(router.row({ qty: 'lots' }))
        .where('id', 6);
      await app('stock_live').insert(router.row({ id: 100002, qty: 'y' }));
      const backfilled = await m.backfill();
      assert.equal(backfilled.phase, 'backfilled');
    } finally {
      const report = await load.stop();
      assert.equal(report.errors, 0, JSON.stringify(report.errorSamples));
      assert.ok(report.ops > 20);
      await router.close();
    }
    assert.deepEqual(
      (await app.raw('SELECT id, qty, qty_int FROM stock_live WHERE id IN (6, 100001, 100002, 777) ORDER BY id')).rows,
      [
        { id: '6', qty: 'lots', qty_int: null },
        { id: '777', qty: 'N/A', qty_int: null },
        { id: '100001', qty: 'x', qty_int: null },
        { id: '100002', qty: 'y', qty_int: null },
      ],
    );
    // The load writes the qty of rows 1001-5000 only, so the planted rows (5, 6, 777, 100001, 100002) keep what this test wrote.
    const status = await m.status();
    assert.ok(status.underivable.count >= 4);
    assert.deepEqual(
      status.underivable.rows.find((u) => u.key[0] === 777),
      {
        ...status.underivable.rows.find((u) => u.key[0] === 777),
        oldValue: 'N/A',
        error: 'invalid input syntax for type integer: "N/A"',
        sqlstate: '22P02',
        source: 'preflight',
      },
    );
    await assert.rejects(
      m.verify(),
      (e: unknown) =>
        isPhaseflagError(e, 'PF_VERIFY_FAILED') && /cannot be derived by the backfill expression/.test(e.message),
    );
    // The gauge holds the count status last read.
    const collected = await metrics.collect();
    const gauge = collected.scopeMetrics
      .flatMap((sm) => sm.metrics)
      .find((x) => x.descriptor.name === METRIC.underivableRows);
    const point = gauge?.dataPoints.find((p) => p.attributes[ATTR.migrationId] === 'live');
    assert.equal(point?.value, status.underivable.count);
    const refused = await m.inspect();
    assert.equal(refused.facts.underivable?.count, status.underivable.count);

    // Fixed by the application (a value that maps): the trigger derives the new column, verify clears the records.
    await app.raw("UPDATE stock_live SET qty = '1' WHERE qty !~ '^[0-9]+$'");
    const clean = await m.verify();
    assert.equal(clean.clean, true);
    assert.equal(clean.underivable.count, 0);
    assert.equal((await internalsOf(pf).store.get('live'))!.phase, 'verified');
    assert.deepEqual(await keys('live'), []);
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
