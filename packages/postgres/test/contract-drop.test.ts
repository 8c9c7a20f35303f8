import assert from 'node:assert/strict';
import { StaticFlagSource, defineMigration, type Migration } from '@phaseflag/core';
import { amountInput, createSuiteSchema, type Suite } from '@phaseflag/testkit';
import { Phaseflag } from '../src/index.js';
import { internalsOf, runDdl } from '../src/internal.js';

describe('contract with the old column dropped: services started afterwards work without it', function () {
  this.timeout(120_000);
  let suite: Suite;
  let pf: Phaseflag;
  const engines: Phaseflag[] = [];
  const flags = new StaticFlagSource({});

  before(async () => {
    suite = await createSuiteSchema('contract_drop');
    pf = new Phaseflag({ knex: suite.knex, stateSchema: suite.stateSchema, pollIntervalMs: 100, graceMs: 50 });
    await pf.install();
  });
  after(async () => {
    for (const e of engines) await e.close();
    await pf?.close();
    await suite?.cleanup();
  });

  /** A new service instance: its own engine over the same database and state schema, as after a restart. */
  const restart = () => {
    const e = new Phaseflag({ knex: suite.knex, stateSchema: suite.stateSchema, pollIntervalMs: 100 });
    engines.push(e);
    return e;
  };
  const createTable = async (table: string, rows: number) => {
    await suite.knex.raw('CREATE TABLE ?? (id bigserial PRIMARY KEY, amount_cents integer NOT NULL)', [table]);
    await suite.knex.raw('INSERT INTO ?? (amount_cents) SELECT g * 7 FROM generate_series(1, ?::int) AS g', [
      table,
      rows,
    ]);
  };
  const walkToReadNew = async (m: Migration) => {
    const h = pf.migration(m);
    await h.expand();
    await h.startDualWrite();
    await h.backfill();
    await h.verify();
    await h.readNew();
    return h;
  };
  const hasColumn = async (table: string, column: string) =>
    (
      await suite.knex.raw(
        'SELECT count(*)::int AS n FROM information_schema.columns WHERE table_schema = ? AND table_name = ? AND column_name = ?',
        [suite.schema, table, column],
      )
    ).rows[0].n === 1;
  const rejects = (p: Promise<unknown>, code: string) =>
    assert.rejects(p, (e: { code?: string; value?: unknown }) => {
      assert.equal(e.code, code);
      return true;
    });

  it("records the drop with the column's type in the state store, in the DROP's own transaction", async () => {
    await createTable('orders_rec', 100);
    const m = defineMigration(amountInput('rec', 'orders_rec'));
    await (await walkToReadNew(m)).contract({ confirm: true, dropOldColumn: true });
    assert.equal(await hasColumn('orders_rec', 'amount_cents'), false);
    const row = (await internalsOf(pf).store.get('rec'))!;
    assert.equal(row.phase, 'contracted');
    assert.ok(row.old_column_dropped_at instanceof Date, 'the drop is recorded');
    assert.equal(row.old_column_type, 'integer');

    // A DROP that fails records nothing: the record commits with the DDL or not at all.
    await suite.knex.raw(
      'INSERT INTO ??.migrations (id, table_schema, table_name, old_column, new_column, definition) VALUES (?, ?, ?, ?, ?, ?::jsonb)',
      [suite.stateSchema, 'norec', suite.schema, 'orders_rec', 'no_such_column', 'amount', '{}'],
    );
    const failing = {
      step: 'drop-old-column',
      sql: `ALTER TABLE "${suite.schema}".orders_rec DROP COLUMN no_such_column`,
      lock: 'ACCESS EXCLUSIVE' as const,
      maxLockWaitMs: 500,
      maxDurationMs: 500,
      transactional: true,
      description: 'drop',
    };
    await rejects(
      runDdl(internalsOf(pf).ctx, failing, {
        migrationId: 'norec',
        ddl: m.ddl,
        record: {
          text: `UPDATE "${suite.stateSchema}".migrations SET old_column_dropped_at = now() WHERE id = $1`,
          values: ['norec'],
        },
      }),
      'PF_DDL_FAILED',
    );
    assert.equal((await internalsOf(pf).store.get('norec'))!.old_column_dropped_at, null);
  });

  it('an instance started after the drop registers, routes reads and writes to the new column alone, and plans', async () => {
    await createTable('orders_after', 1000);
    const m = defineMigration(amountInput('after', 'orders_after'));
    await (await walkToReadNew(m)).contract({ confirm: true, dropOldColumn: true });
    assert.equal(await hasColumn('orders_after', 'amount_cents'), false);

    const later = restart().migration(m);
    const registered = await later.register();
    assert.equal(registered.phase, 'contracted');
    const r = await later.resolve();
    assert.equal(r.oldColumnDropped, true);
    assert.deepEqual(r.oldColumn, { name: 'amount_cents', type: 'integer', notNull: false });

    const router = await later.router(flags, { instanceId: 'started-after-drop', heartbeatMs: 0 });
    assert.equal(router.core.currentPhase, 'contracted');
    assert.deepEqual({ ...router.decide() }, { read: 'new', readColumn: 'amount', writeOld: false, writeNew: true });
    // The application still writes the value it always wrote; the router derives the new column from it in SQL.
    const [inserted] = await suite
      .knex('orders_after')
      .insert(router.row({ amount_cents: 1250 }))
      .returning('id');
    await suite
      .knex('orders_after')
      .update(router.row({ amount_cents: 99 }))
      .where('id', 1);
    const read = await suite
      .knex('orders_after')
      .select('id', router.select())
      .whereIn('id', [1, (inserted as { id: string }).id])
      .orderBy('id');
    assert.deepEqual(
      read.map((x) => [Number(x.id), x.amount]),
      [
        [1, '0.99'],
        [1001, '12.50'],
      ],
    );
    await suite.knex('orders_after').insert(router.row({ amount: '3.25' }));

    const plan = await later.plan();
    assert.equal(plan.oldColumnDropped, true);
    assert.equal(plan.oldColumn?.name, 'amount_cents');
    const status = await later.status();
    assert.equal(status.phase, 'contracted');
    assert.ok(status.record.oldColumnDroppedAt instanceof Date);
    const { facts } = await later.inspect();
    assert.equal(facts.phase, 'contracted');

    // A controller started afterwards finds nothing to do and no error.
    const c = restart().controller(m, { flags, intervalMs: 100 });
    await c.start();
    assert.deepEqual(
      c.status().map((s) => [s.phase, s.lastError]),
      [['contracted', null]],
    );
    await c.stop();
    // Contracted stays final.
    await rejects(later.rollback(), 'PF_IRREVERSIBLE');
    await router.close();
  });

  it('still refuses a missing old column with PF_UNKNOWN_COLUMN unless the migration is contracted with the drop recorded', async () => {
    // Never had it.
    await suite.knex.raw('CREATE TABLE orders_none (id bigserial PRIMARY KEY, amount numeric(12,2))');
    await rejects(pf.migration(defineMigration(amountInput('none', 'orders_none'))).register(), 'PF_UNKNOWN_COLUMN');
    await rejects(pf.migration(defineMigration(amountInput('none', 'orders_none'))).plan(), 'PF_UNKNOWN_COLUMN');

    // Dropped by hand in the middle of the migration.
    await createTable('orders_mid', 100);
    const mid = defineMigration(amountInput('mid', 'orders_mid'));
    const h = pf.migration(mid);
    await h.expand();
    await h.startDualWrite();
    await suite.knex.raw('ALTER TABLE orders_mid DROP COLUMN amount_cents CASCADE');
    await rejects(restart().migration(mid).router(flags), 'PF_UNKNOWN_COLUMN');

    // Contracted, but the old column was kept by contract and dropped by hand: nothing records a drop.
    await createTable('orders_kept', 100);
    const kept = defineMigration(amountInput('kept', 'orders_kept'));
    await (await walkToReadNew(kept)).contract({ confirm: true });
    assert.equal(await hasColumn('orders_kept', 'amount_cents'), true, 'contract keeps the old column unless asked');
    assert.equal((await internalsOf(pf).store.get('kept'))!.old_column_dropped_at, null);
    await suite.knex.raw('ALTER TABLE orders_kept DROP COLUMN amount_cents');
    await rejects(restart().migration(kept).register(), 'PF_UNKNOWN_COLUMN');
  });
});
