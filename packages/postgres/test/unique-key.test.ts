import assert from 'node:assert/strict';
import { isPhaseflagError } from '@phaseflag/core';
import { startLoad, type LoadOp } from '@phaseflag/testkit';
import {
  qtyMigration,
  rejectsWith,
  setupUnderivableSuite,
  type UnderivableSuite,
} from './fixtures/underivable-suite.js';

/**
 * A table without a primary key, walked (as pgroll does) by a unique key on NOT NULL columns: one key chosen
 * deterministically, shown by resolve() and plan, and used by preflight, backfill, bisection and verify.
 */
describe('a table without a primary key but with unique not-null keys', function () {
  this.timeout(120_000);
  let s: UnderivableSuite | undefined;

  before(async () => {
    s = await setupUnderivableSuite('unique key');
  });
  after(async () => {
    await s?.close();
  });

  /** Keys of every kind: the one-column constraint wins over the bare one-column index (a constraint first) and
   * the two-column one (fewer columns); the nullable, partial and expression ones are never eligible. */
  async function stock(table: string, rows: number, planted: Record<number, string> = {}): Promise<void> {
    await s!.suite.knex.raw(
      `CREATE TABLE ?? (code text NOT NULL, serial int NOT NULL, alt int UNIQUE, qty text NOT NULL, note text,
         CONSTRAINT ?? UNIQUE (code, serial), CONSTRAINT ?? UNIQUE (serial));
       CREATE UNIQUE INDEX ?? ON ?? (code);
       CREATE UNIQUE INDEX ?? ON ?? (qty) WHERE qty = 'x';
       INSERT INTO ?? (code, serial, qty) SELECT 'c' || g, g, (g % 500)::text FROM generate_series(1, ${rows}) g;`,
      [table, `${table}_a_pair`, `${table}_serial`, `${table}_a_code`, table, `${table}_partial`, table, table],
    );
    for (const [serial, value] of Object.entries(planted))
      await s!.suite.knex.raw('UPDATE ?? SET qty = ? WHERE serial = ?', [table, value, Number(serial)]);
  }

  it('picks the primary key, else the unique not-null key with the fewest columns, a constraint first, then by name', async () => {
    const { pf, suite } = s!;
    await stock('uk_pick', 10);
    const r = await pf.migration(qtyMigration('pick', 'uk_pick', { primaryKey: 'serial' })).resolve();
    assert.deepEqual(
      [r.primaryKey.map((c) => c.name), r.rowKey],
      [['serial'], { kind: 'unique constraint', name: 'uk_pick_serial' }],
    );
    const plan = await pf.migration(qtyMigration('pick', 'uk_pick', { primaryKey: 'serial' })).plan();
    assert.deepEqual(plan.key, { kind: 'unique constraint', name: 'uk_pick_serial', columns: ['serial'] });
    assert.match(plan.phases.find((p) => p.phase === 'verify')!.statements[0]!.description, /uk_pick_serial/);
    // Declared otherwise: refused, naming the key the table is walked by and the ones it was chosen before.
    await assert.rejects(pf.migration(qtyMigration('pick-default', 'uk_pick')).plan(), (e: unknown) => {
      assert.ok(isPhaseflagError(e, 'PF_NO_PRIMARY_KEY'), String(e));
      assert.match(
        e.message,
        /unique constraint "uk_pick_serial" \(serial\), chosen before unique index "uk_pick_a_code"/,
      );
      assert.match(e.hint, /primaryKey: "serial"/);
      return true;
    });
    // A primary key, once there, comes first.
    await suite.knex.raw('ALTER TABLE uk_pick ADD PRIMARY KEY (code, serial)');
    const withPk = await pf.migration(qtyMigration('pick-pk', 'uk_pick', { primaryKey: ['code', 'serial'] })).resolve();
    assert.deepEqual(withPk.rowKey, { kind: 'primary key', name: 'uk_pick_pkey' });
  });

  it('refuses a table with no eligible key, with a hint to add one', async () => {
    const { pf, suite } = s!;
    await suite.knex.raw('CREATE TABLE uk_none (serial int UNIQUE, qty text NOT NULL)');
    await assert.rejects(
      pf.migration(qtyMigration('none', 'uk_none', { primaryKey: 'serial' })).plan(),
      (e: unknown) => {
        assert.ok(isPhaseflagError(e, 'PF_NO_PRIMARY_KEY'), String(e));
        assert.match(e.hint, /add a primary key .* or a unique not-null key/);
        return true;
      },
    );
  });

  it('preflight, backfill and verify walk the unique key under a writer, from expand to contract', async () => {
    const { pf, app, keys, suite } = s!;
    await stock('uk_walk', 3000, { 777: 'N/A' });
    const m = pf.migration(
      qtyMigration('walk', 'uk_walk', { primaryKey: 'serial', batch: { size: 200, targetBatchMs: 0 } }),
    );
    await m.expand();
    const found = await m.preflight();
    assert.deepEqual(
      found.failedRows.map((row) => row.key),
      [[777]],
    );
    await m.startDualWrite({ acceptPreflightFailures: true });
    const rand = (n: number) => 1 + Math.floor(Math.random() * n);
    const ops: LoadOp[] = [
      {
        name: 'update',
        run: async (_i, db) => {
          await db.raw('UPDATE uk_walk SET qty = ? WHERE serial = ?', [String(rand(900)), 1000 + rand(2000)]);
        },
      },
      {
        name: 'insert',
        run: async (i, db) => {
          await db.raw('INSERT INTO uk_walk (code, serial, qty) VALUES (?, ?, ?)', [`w${i}`, 10_000 + i, String(i)]);
        },
      },
    ];
    const writer = startLoad({ knex: app, concurrency: 3, ops });
    try {
      assert.equal((await m.backfill()).phase, 'backfilled');
      await rejectsWith(m.verify(), 'PF_VERIFY_FAILED');
      assert.deepEqual(await keys('walk'), [{ key: [777], source: 'preflight' }]);
      await app.raw("UPDATE uk_walk SET qty = '7' WHERE serial = 777");
      assert.equal((await m.verify()).clean, true);
      await m.readNew();
    } finally {
      const stats = await writer.stop();
      assert.equal(stats.errors, 0, JSON.stringify(stats.errorSamples.slice(0, 3)));
      assert.ok(stats.ops > 20);
    }
    await m.contract({ confirm: true });
    const wrong = await suite.knex.raw(
      'SELECT count(*)::int AS n FROM uk_walk WHERE qty_int IS DISTINCT FROM qty::int',
    );
    assert.equal(wrong.rows[0].n, 0);
  });

  it("bisection names an unrecorded row by the unique key's value", async () => {
    const { pf, app } = s!;
    await stock('uk_bisect', 4000);
    const m = pf.migration(
      qtyMigration('bisect', 'uk_bisect', {
        primaryKey: 'serial',
        batch: { size: 1000, targetBatchMs: 0 },
      }),
    );
    await m.expand();
    await m.startDualWrite();
    // Written while the trigger was off (a bulk load with triggers disabled): nobody recorded it.
    await app.raw('ALTER TABLE uk_bisect DISABLE TRIGGER USER');
    await app.raw("UPDATE uk_bisect SET qty = 'N/A' WHERE serial = 2345");
    await app.raw('ALTER TABLE uk_bisect ENABLE TRIGGER USER');
    await assert.rejects(m.backfill(), (e: unknown) => {
      assert.ok(isPhaseflagError(e, 'PF_BACKFILL_ROW_FAILED'), String(e));
      assert.match(e.message, /key \[2345\]/);
      return true;
    });
  });
});
