import assert from 'node:assert/strict';
import { defineMigration, isPhaseflagError, type MigrationInput } from '@phaseflag/core';
import { createSuiteSchema, startLoad, type LoadOp, type Suite } from '@phaseflag/testkit';
import { createContext } from '../src/context.js';
import { Phaseflag } from '../src/index.js';
import { addForeignKey } from '../src/operations/steps/add-foreign-key.js';

/** orders.customer_ref 'C<n>' becomes customer_id bigint REFERENCES customers (id). */
const fkMigration = (id: string, table: string, extra: Partial<MigrationInput> = {}) =>
  defineMigration({
    id,
    table,
    oldColumn: 'customer_ref',
    newColumn: {
      name: 'customer_id',
      type: 'bigint',
      nullable: false,
      references: { table: 'customers', column: 'id', name: `${table}_customer_fk` },
    },
    backfill: 'substr(customer_ref, 2)::bigint',
    reverse: "'C' || customer_id::text",
    batch: { size: 500, targetBatchMs: 0 },
    ddl: { lockTimeoutMs: 500, retryBaseMs: 20, retryMaxMs: 200 },
    ...extra,
  });

const rand = (n: number) => 1 + Math.floor(Math.random() * n);

describe('a new column with a foreign key', function () {
  this.timeout(120_000);
  let suite: Suite;
  let pf: Phaseflag;

  before(async () => {
    suite = await createSuiteSchema('foreign key', { pool: { min: 0, max: 12 } });
    pf = new Phaseflag({ knex: suite.knex, stateSchema: suite.stateSchema, pollIntervalMs: 100, graceMs: 0 });
    await pf.install();
    await suite.knex.raw(
      'CREATE TABLE customers (id bigint PRIMARY KEY, name text); INSERT INTO customers SELECT g, $$c$$ || g FROM generate_series(1, 100) g',
    );
  });
  after(async () => {
    await pf?.close();
    await suite?.cleanup();
  });

  async function orders(table: string, rows: number): Promise<void> {
    await suite.knex.raw(
      `CREATE TABLE ?? (id bigserial PRIMARY KEY, customer_ref text NOT NULL, note text);
       INSERT INTO ?? (customer_ref) SELECT 'C' || (1 + g % 100) FROM generate_series(1, ${rows}) g`,
      [table, table],
    );
  }
  const constraint = async (table: string) =>
    (
      await suite.knex.raw(
        `SELECT conname, convalidated FROM pg_constraint WHERE conrelid = ?::regclass AND contype = 'f'`,
        [table],
      )
    ).rows;
  const indexes = async (table: string) =>
    (
      await suite.knex.raw(
        `SELECT indexrelid::regclass::text AS name FROM pg_index WHERE indrelid = ?::regclass AND NOT indisprimary`,
        [table],
      )
    ).rows;

  it('plans the index at expand, ADD … NOT VALID and VALIDATE at verify with the locks on both tables, and the drop at rollback', async () => {
    await orders('fk_plan', 10);
    const plan = await pf.migration(fkMigration('fk-plan', 'fk_plan')).plan();
    const of = (phase: string) => plan.phases.find((p) => p.phase === phase)!.statements;
    assert.ok(of('expand').some((s) => /CREATE INDEX CONCURRENTLY .* \("customer_id"\)/.test(s.sql)));
    const [walk, add, validate] = of('verify');
    assert.match(walk!.sql, /NOT EXISTS \(SELECT FROM "[^"]+"\."customers"/);
    assert.match(
      add!.sql,
      /ADD CONSTRAINT "fk_plan_customer_fk" FOREIGN KEY \("customer_id"\) REFERENCES "[^"]+"\."customers" \("id"\) ON DELETE NO ACTION NOT VALID$/,
    );
    assert.deepEqual(
      [add!.lock, add!.otherLocks?.map((l) => [l.table.name, l.lock])],
      ['SHARE ROW EXCLUSIVE', [['customers', 'SHARE ROW EXCLUSIVE']]],
    );
    assert.deepEqual(
      [validate!.lock, validate!.otherLocks?.map((l) => [l.table.name, l.lock])],
      ['SHARE UPDATE EXCLUSIVE', [['customers', 'ROW SHARE']]],
    );
    assert.ok(of('rollback').some((s) => /DROP CONSTRAINT IF EXISTS "fk_plan_customer_fk"/.test(s.sql)));
  });

  it('refuses a referenced column without a key of its own, and a partitioned table', async () => {
    await orders('fk_bad', 10);
    const nokey = fkMigration('fk-nokey', 'fk_bad', {
      newColumn: { name: 'customer_id', type: 'bigint', references: { table: 'customers', column: 'name' } },
    });
    await assert.rejects(
      pf.migration(nokey).plan(),
      (e: unknown) => isPhaseflagError(e, 'PF_UNKNOWN_COLUMN') && /unique/.test(e.message),
    );
    await suite.knex.raw(
      'CREATE TABLE fk_parted (id bigint PRIMARY KEY, customer_ref text NOT NULL) PARTITION BY RANGE (id); CREATE TABLE fk_parted_1 PARTITION OF fk_parted FOR VALUES FROM (0) TO (100)',
    );
    await assert.rejects(pf.migration(fkMigration('fk-parted', 'fk_parted')).plan(), (e: unknown) =>
      isPhaseflagError(e, 'PF_INVALID_MIGRATION'),
    );
  });

  it('walks every phase under a writer; the constraint is validated at verify and enforced after', async () => {
    await orders('fk_walk', 3000);
    const m = pf.migration(fkMigration('fk-walk', 'fk_walk'));
    const app = suite.newKnex({ pool: { min: 0, max: 4 } });
    const ops: LoadOp[] = [
      {
        name: 'update',
        run: async (_i, db) =>
          void (await db.raw("UPDATE fk_walk SET customer_ref = 'C' || ? WHERE id = ?", [rand(100), rand(3000)])),
      },
      {
        name: 'insert',
        run: async (_i, db) => void (await db.raw("INSERT INTO fk_walk (customer_ref) VALUES ('C' || ?)", [rand(100)])),
      },
    ];
    const writer = startLoad({ knex: app, concurrency: 3, ops });
    try {
      await m.expand();
      assert.deepEqual(await constraint('fk_walk'), [], 'no constraint before verify');
      await m.startDualWrite();
      await m.backfill();
      await m.verify();
      assert.deepEqual(await constraint('fk_walk'), [{ conname: 'fk_walk_customer_fk', convalidated: true }]);
      await m.readNew();
    } finally {
      const stats = await writer.stop();
      await app.destroy();
      assert.equal(stats.errors, 0, JSON.stringify(stats.errorSamples.slice(0, 3)));
    }
    await m.contract({ confirm: true });
    await assert.rejects(
      suite.knex.raw('INSERT INTO fk_walk (customer_ref, customer_id) VALUES ($$C999$$, 999)'),
      /violates foreign key constraint/,
    );
  });

  it('a row without a parent fails verify naming its key, and VALIDATE leaves no half state', async () => {
    await orders('fk_orphan', 1000);
    await suite.knex.raw("UPDATE fk_orphan SET customer_ref = 'C999' WHERE id = 640");
    const m = pf.migration(fkMigration('fk-orphan', 'fk_orphan'));
    await m.expand();
    await m.startDualWrite();
    await m.backfill();
    await assert.rejects(m.verify(), (e: unknown) => {
      assert.ok(isPhaseflagError(e, 'PF_VERIFY_FAILED'), String(e));
      assert.deepEqual((e.value as { sampleKeys: unknown[] }).sampleKeys, [[640]]);
      return true;
    });
    assert.deepEqual(await constraint('fk_orphan'), []);
    // The same row met by VALIDATE itself (written after a clean walk): the constraint is taken back.
    const ctx = createContext({ knex: suite.knex, stateSchema: suite.stateSchema });
    await assert.rejects(addForeignKey.apply(ctx, await m.resolve()), (e: unknown) => {
      assert.ok(isPhaseflagError(e, 'PF_VERIFY_FAILED'), String(e));
      assert.deepEqual((e.value as { orphanKeys: unknown[] }).orphanKeys, [[640]]);
      assert.match(e.message, /\[640\]/);
      return true;
    });
    assert.deepEqual(await constraint('fk_orphan'), [], 'no NOT VALID constraint is left behind');
    await suite.knex.raw("UPDATE fk_orphan SET customer_ref = 'C9' WHERE id = 640");
    assert.equal((await m.verify()).clean, true);
    assert.equal((await constraint('fk_orphan'))[0].convalidated, true);
  });

  it('rolls back from verified under a writer: the constraint and the index are dropped', async () => {
    await orders('fk_undo', 1000);
    const m = pf.migration(fkMigration('fk-undo', 'fk_undo'));
    await m.expand();
    await m.startDualWrite();
    await m.backfill();
    await m.verify();
    const app = suite.newKnex({ pool: { min: 0, max: 4 } });
    const writer = startLoad({
      knex: app,
      concurrency: 3,
      ops: [
        {
          name: 'insert',
          run: async (_i, db) =>
            void (await db.raw("INSERT INTO fk_undo (customer_ref) VALUES ('C' || ?)", [rand(100)])),
        },
      ],
    });
    try {
      await m.rollback({ dropNewColumn: false });
    } finally {
      const stats = await writer.stop();
      await app.destroy();
      assert.equal(stats.errors, 0, JSON.stringify(stats.errorSamples.slice(0, 3)));
    }
    assert.deepEqual(await constraint('fk_undo'), []);
    assert.deepEqual(await indexes('fk_undo'), []);
  });
});
