import assert from 'node:assert/strict';
import { ATTR, SPAN, defineMigration, isPhaseflagError } from '@phaseflag/core';
import type { Phaseflag } from '@phaseflag/postgres';
import { amountInput, captureSpans, createSuiteSchema, startLoad, type LoadOp, type Suite } from '@phaseflag/testkit';
import type { Knex } from 'knex';
import { engine } from './support/orders.js';

const ROWS = 6000;
const rand = (n: number) => 1 + Math.floor(Math.random() * n);

/** `name` partitioned by region: region 1 a plain partition, region 2 sub-partitioned by id (two levels). */
async function createEvents(knex: Knex, name: string): Promise<void> {
  await knex.raw(`
    CREATE TABLE ${name} (id bigint NOT NULL, region int NOT NULL, amount_cents integer NOT NULL, note text,
      PRIMARY KEY (id, region)) PARTITION BY LIST (region);
    CREATE TABLE ${name}_r1 PARTITION OF ${name} FOR VALUES IN (1);
    CREATE TABLE ${name}_r2 PARTITION OF ${name} FOR VALUES IN (2) PARTITION BY RANGE (id);
    CREATE TABLE ${name}_r2a PARTITION OF ${name}_r2 FOR VALUES FROM (0) TO (3000);
    CREATE TABLE ${name}_r2b PARTITION OF ${name}_r2 DEFAULT;
    INSERT INTO ${name} (id, region, amount_cents) SELECT g, 1 + g % 2, (g * 37) % 100000 FROM generate_series(1, ${ROWS}) g;
    ANALYZE ${name};`);
}

function migration(id: string, table: string) {
  return defineMigration(
    amountInput(id, table, {
      primaryKey: ['id', 'region'],
      newColumn: { name: 'amount', type: 'numeric(12,2)', nullable: false, index: { name: `${table}_amount_idx` } },
    }),
  );
}

/** A writer that knows nothing of phaseflag: plain SQL on the old column, through the partitioned parent. */
function writerOps(table: string, region = 2): LoadOp[] {
  return [
    {
      name: 'update',
      weight: 2,
      run: async (_i, db) => {
        await db.raw(`UPDATE ${table} SET amount_cents = (amount_cents + 1) % 100000 WHERE id = ? AND region = ?`, [
          rand(ROWS),
          1 + (rand(ROWS) % 2),
        ]);
      },
    },
    {
      name: 'insert',
      weight: 1,
      run: async (i, db) => {
        await db.raw(`INSERT INTO ${table} (id, region, amount_cents) VALUES (?, ?, ?)`, [ROWS + 1 + i, region, 42]);
      },
    },
  ];
}

/** Every index on the table's partitions and the table itself, with validity and the index it is attached to. */
async function indexes(knex: Knex, schema: string, table: string) {
  return (
    await knex.raw(
      `SELECT c.relname AS "table", ci.relname AS index, i.indisvalid AS valid, pi.relname AS parent
         FROM pg_partition_tree(?::regclass) t
         JOIN pg_class c ON c.oid = t.relid
         JOIN pg_index i ON i.indrelid = c.oid
         JOIN pg_class ci ON ci.oid = i.indexrelid
         LEFT JOIN pg_inherits h ON h.inhrelid = ci.oid
         LEFT JOIN pg_class pi ON pi.oid = h.inhparent
        WHERE NOT i.indisprimary AND ci.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = ?)
        ORDER BY 1, 2`,
      [`${schema}.${table}`, schema],
    )
  ).rows as Array<{ table: string; index: string; valid: boolean; parent: string | null }>;
}

describe('a partitioned table (with a sub-partitioned partition) with an index on the new column', function () {
  this.timeout(300_000);
  const spans = captureSpans();
  let suite: Suite;
  let pf: Phaseflag;

  before(async () => {
    suite = await createSuiteSchema('partitioned', { pool: { min: 0, max: 12 } });
    pf = engine(suite);
    await pf.install();
  });
  after(async () => {
    await pf?.close();
    await suite?.cleanup();
  });

  it('plans each partition index concurrently, ON ONLY and ATTACH, each with its lock', async () => {
    await createEvents(suite.knex, 'planned');
    const plan = await pf.migration(migration('planned', 'planned')).plan();
    const expand = plan.phases.find((p) => p.phase === 'expand')!;
    const lines = expand.statements.map((s) => `${s.lock}: ${s.sql.replace(/"[a-z0-9_]+"\./g, '')}`);
    assert.deepEqual(
      lines.filter((l) => !l.includes('DROP INDEX')),
      [
        'ACCESS EXCLUSIVE: ALTER TABLE "planned" ADD COLUMN IF NOT EXISTS "amount" numeric(12,2)',
        'SHARE UPDATE EXCLUSIVE: CREATE INDEX CONCURRENTLY IF NOT EXISTS "planned_amount_idx_planned_r1" ON "planned_r1" ("amount")',
        'SHARE UPDATE EXCLUSIVE: CREATE INDEX CONCURRENTLY IF NOT EXISTS "planned_amount_idx_planned_r2a" ON "planned_r2a" ("amount")',
        'SHARE UPDATE EXCLUSIVE: CREATE INDEX CONCURRENTLY IF NOT EXISTS "planned_amount_idx_planned_r2b" ON "planned_r2b" ("amount")',
        'SHARE: CREATE INDEX IF NOT EXISTS "planned_amount_idx_planned_r2" ON ONLY "planned_r2" ("amount")',
        'ACCESS EXCLUSIVE: ALTER INDEX "planned_amount_idx_planned_r2" ATTACH PARTITION "planned_amount_idx_planned_r2a"',
        'ACCESS EXCLUSIVE: ALTER INDEX "planned_amount_idx_planned_r2" ATTACH PARTITION "planned_amount_idx_planned_r2b"',
        'SHARE: CREATE INDEX IF NOT EXISTS "planned_amount_idx" ON ONLY "planned" ("amount")',
        'ACCESS EXCLUSIVE: ALTER INDEX "planned_amount_idx" ATTACH PARTITION "planned_amount_idx_planned_r1"',
        'ACCESS EXCLUSIVE: ALTER INDEX "planned_amount_idx" ATTACH PARTITION "planned_amount_idx_planned_r2"',
      ],
    );
    const contract = plan.phases.find((p) => p.phase === 'contract')!;
    assert.ok(contract.statements.some((s) => /VALIDATE CONSTRAINT/.test(s.sql)));
    assert.ok(
      contract.notes.some((n) => /4 partition\(s\).*ACCESS EXCLUSIVE on the table and every partition/.test(n)),
    );
    const rollback = plan.phases.find((p) => p.phase === 'rollback')!;
    assert.ok(rollback.statements.some((s) => s.lock === 'ACCESS EXCLUSIVE' && /DROP INDEX IF EXISTS/.test(s.sql)));
  });

  it('refuses a unique index that cannot include the partition key, and changes nothing', async () => {
    const m = defineMigration(
      amountInput('unique-parted', 'planned', {
        primaryKey: ['id', 'region'],
        newColumn: { name: 'amount', type: 'numeric(12,2)', index: { unique: true } },
      }),
    );
    await assert.rejects(
      pf.migration(m).plan(),
      (e: unknown) => isPhaseflagError(e, 'PF_INVALID_MIGRATION') && /partition key/.test(e.message),
    );
  });

  it('walks every phase under a writer; a partition created mid-migration is indexed and kept in sync', async () => {
    await createEvents(suite.knex, 'events');
    const m = pf.migration(migration('events-amount', 'events'));
    await m.plan();
    // Created after the plan, before expand: apply reads the partitions again.
    await suite.knex.raw('CREATE TABLE events_r3 PARTITION OF events FOR VALUES IN (3)');
    const app = suite.newKnex({ pool: { min: 0, max: 4 } });
    const writer = startLoad({ knex: app, concurrency: 3, ops: writerOps('events') });
    try {
      await m.expand();
      const built = await indexes(suite.knex, suite.schema, 'events');
      assert.deepEqual(
        built.map((i) => [i.table, i.valid, i.parent]),
        [
          ['events', true, null],
          ['events_r1', true, 'events_amount_idx'],
          ['events_r2', true, 'events_amount_idx'],
          ['events_r2a', true, 'events_amount_idx_events_r2'],
          ['events_r2b', true, 'events_amount_idx_events_r2'],
          ['events_r3', true, 'events_amount_idx'],
        ],
      );
      await m.startDualWrite();
      // Created once the parent index exists: Postgres builds and attaches its index, and the trigger cascades.
      await suite.knex.raw('CREATE TABLE events_r4 PARTITION OF events FOR VALUES IN (4)');
      await suite.knex.raw('INSERT INTO events (id, region, amount_cents) VALUES (1, 4, 250)');
      assert.equal((await suite.knex.raw('SELECT amount FROM events_r4 WHERE id = 1')).rows[0].amount, '2.50');
      assert.equal((await m.backfill()).completed, true);
      await m.verify();
      await m.readNew();
    } finally {
      const stats = await writer.stop();
      await app.destroy();
      assert.equal(stats.errors, 0, JSON.stringify(stats.errorSamples.slice(0, 3)));
      assert.ok(stats.ops > 20, `the writer ran (${stats.ops} statements)`);
    }
    await m.contract({ confirm: true });
    const notNull = await suite.knex.raw(
      `SELECT c.relname, a.attnotnull FROM pg_partition_tree('events') t JOIN pg_class c ON c.oid = t.relid
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'amount' ORDER BY 1`,
    );
    assert.ok(
      notNull.rows.every((r: { attnotnull: boolean }) => r.attnotnull),
      JSON.stringify(notNull.rows),
    );
    const helpers = await suite.knex.raw("SELECT conname FROM pg_constraint WHERE conname LIKE 'pf_nn%'");
    assert.deepEqual(helpers.rows, [], 'the helper checks are gone from the table and every partition');
    const wrong = await suite.knex.raw(
      'SELECT count(*)::int AS n FROM events WHERE amount IS DISTINCT FROM (amount_cents::numeric / 100)::numeric(12,2)',
    );
    assert.equal(wrong.rows[0].n, 0);
  });

  it('resumes a half-done build: a valid partition index is kept, an INVALID one is dropped and rebuilt', async () => {
    await createEvents(suite.knex, 'resumed');
    await suite.knex.raw('ALTER TABLE resumed ADD COLUMN amount numeric(12,2)');
    await suite.knex.raw('CREATE INDEX resumed_amount_idx_resumed_r1 ON resumed_r1 (amount)');
    await suite.knex.raw('CREATE INDEX resumed_amount_idx_resumed_r2a ON resumed_r2a (amount)');
    // What a CREATE INDEX CONCURRENTLY interrupted half-way leaves behind.
    await suite.knex.raw(
      "UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'resumed_amount_idx_resumed_r2a'::regclass",
    );
    spans.reset();
    await pf.migration(migration('resumed-amount', 'resumed')).expand();
    const ran = spans
      .byName(SPAN.ddl)
      .map((s) => String(s.attributes[ATTR.statement]).replace(/"[a-z0-9_]+"\./g, ''))
      .filter((sql) => /INDEX/.test(sql));
    assert.deepEqual(ran, [
      'DROP INDEX CONCURRENTLY IF EXISTS "resumed_amount_idx_resumed_r2a"',
      'CREATE INDEX CONCURRENTLY IF NOT EXISTS "resumed_amount_idx_resumed_r2a" ON "resumed_r2a" ("amount")',
      'CREATE INDEX CONCURRENTLY IF NOT EXISTS "resumed_amount_idx_resumed_r2b" ON "resumed_r2b" ("amount")',
      'CREATE INDEX IF NOT EXISTS "resumed_amount_idx_resumed_r2" ON ONLY "resumed_r2" ("amount")',
      'ALTER INDEX "resumed_amount_idx_resumed_r2" ATTACH PARTITION "resumed_amount_idx_resumed_r2a"',
      'ALTER INDEX "resumed_amount_idx_resumed_r2" ATTACH PARTITION "resumed_amount_idx_resumed_r2b"',
      'CREATE INDEX IF NOT EXISTS "resumed_amount_idx" ON ONLY "resumed" ("amount")',
      'ALTER INDEX "resumed_amount_idx" ATTACH PARTITION "resumed_amount_idx_resumed_r1"',
      'ALTER INDEX "resumed_amount_idx" ATTACH PARTITION "resumed_amount_idx_resumed_r2"',
    ]);
    const built = await indexes(suite.knex, suite.schema, 'resumed');
    assert.ok(built.length === 5 && built.every((i) => i.valid), JSON.stringify(built));
  });

  it('rolls back under a writer: the parent index and every partition index are dropped', async () => {
    await createEvents(suite.knex, 'undone');
    const m = pf.migration(migration('undone-amount', 'undone'));
    await m.expand();
    await m.startDualWrite();
    await m.backfill();
    assert.equal((await indexes(suite.knex, suite.schema, 'undone')).length, 5);
    const app = suite.newKnex({ pool: { min: 0, max: 4 } });
    const writer = startLoad({ knex: app, concurrency: 3, ops: writerOps('undone', 1) });
    try {
      await m.rollback();
    } finally {
      const stats = await writer.stop();
      await app.destroy();
      assert.equal(stats.errors, 0, JSON.stringify(stats.errorSamples.slice(0, 3)));
    }
    assert.deepEqual(await indexes(suite.knex, suite.schema, 'undone'), []);
    const column = await suite.knex.raw(
      "SELECT count(*)::int AS n FROM pg_attribute WHERE attrelid = 'undone'::regclass AND attname = 'amount' AND NOT attisdropped",
    );
    assert.equal(column.rows[0].n, 0);
  });
});
