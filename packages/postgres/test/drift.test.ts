import assert from 'node:assert/strict';
import { defineMigration, type Migration } from '@phaseflag/core';
import { amountInput, createAmountTable, createSuiteSchema, type Suite } from '@phaseflag/testkit';
import { Phaseflag, type DriftFinding, type DriftReport } from '../src/index.js';

/**
 * `handle.drift()` on a real catalog: each of issue 14's cases made by hand, found, explained, and put right by the
 * SQL the finding gives (after which the table is clean again).
 */
describe('drift: the catalog against what the phase implies, each difference with its repair', function () {
  this.timeout(120_000);
  let suite: Suite;
  let pf: Phaseflag;

  before(async () => {
    suite = await createSuiteSchema('drift');
    pf = new Phaseflag({ knex: suite.knex, stateSchema: suite.stateSchema, graceMs: 0, watchDdl: false });
    await pf.install();
  });
  after(async () => {
    await pf?.close();
    await suite?.cleanup();
  });

  /** A migration with an index and a check, in dual-write (so the trigger is there too). */
  const inDualWrite = async (id: string, overrides: object = {}): Promise<Migration> => {
    await createAmountTable(suite.knex, `orders_${id}`, 300);
    const m = defineMigration(
      amountInput(id, `orders_${id}`, {
        newColumn: {
          name: 'amount',
          type: 'numeric(12,2)',
          nullable: false,
          index: true,
          check: { expression: 'amount >= 0' },
        },
        ...overrides,
      }),
    );
    const h = pf.migration(m);
    await h.expand();
    await h.startDualWrite();
    return m;
  };
  const only = (r: DriftReport): DriftFinding => {
    assert.equal(r.findings.length, 1, JSON.stringify(r.findings, null, 2));
    return r.findings[0]!;
  };
  /** Runs a finding's repair SQL as psql would (one statement at a time: CONCURRENTLY refuses a transaction block). */
  const applyRepair = async (f: DriftFinding) => {
    assert.ok(f.repair.sql, 'the finding gives SQL');
    const statements = /CONCURRENTLY/.test(f.repair.sql) ? f.repair.sql.split(/;\n/) : [f.repair.sql];
    for (const stmt of statements) await suite.knex.raw(stmt.replace(/;$/, ''));
  };
  const clean = async (m: Migration) => {
    const r = await pf.migration(m).drift();
    assert.deepEqual(r.findings, [], JSON.stringify(r.findings, null, 2));
    assert.equal(r.drifted, false);
    assert.equal(r.blocking, false);
  };

  it('a migration as phaseflag left it has no drift; the report names its phase and table', async () => {
    const m = await inDualWrite('clean');
    const r = await pf.migration(m).drift();
    assert.equal(r.phase, 'dual-write');
    assert.equal(r.table, `${suite.schema}.orders_clean`);
    await clean(m);
    assert.equal(r.watch.active, false);
    assert.match(r.watch.reason ?? '', /event trigger/);
  });

  it('a column type changed by hand: expected and actual type, ALTER COLUMN … TYPE as the repair', async () => {
    const m = await inDualWrite('retyped');
    // Postgres refuses to retype a column the sync trigger's WHEN clause names: whoever did it dropped the trigger.
    await suite.knex.raw(
      'DROP TRIGGER zz_pf_sync_retyped ON orders_retyped; ALTER TABLE orders_retyped ALTER COLUMN amount TYPE numeric(14,4)',
    );
    const findings = (await pf.migration(m).drift()).findings;
    assert.deepEqual(
      findings.map((x) => [x.object, x.name]),
      [
        ['new column', 'amount'],
        ['sync trigger', 'zz_pf_sync_retyped'],
      ],
    );
    const f = findings[0]!;
    assert.equal(f.expected, 'type numeric(12,2)');
    assert.equal(f.actual, 'type numeric(14,4)');
    assert.equal(f.blocking, true);
    assert.match(
      f.repair.sql ?? '',
      /ALTER TABLE "[^"]+"\."orders_retyped" ALTER COLUMN "amount" TYPE numeric\(12,2\)/,
    );
    assert.match(f.repair.note ?? '', /ACCESS EXCLUSIVE/);
    await applyRepair(f);
    // The declaration resolves again: the trigger's finding now gives the statements that recreate it.
    const t = only(await pf.migration(m).drift());
    assert.deepEqual([t.object, t.actual], ['sync trigger', 'missing']);
    assert.match(
      t.repair.sql ?? '',
      /CREATE TRIGGER "zz_pf_sync_retyped" BEFORE UPDATE ON .* FOR EACH ROW\n {2}WHEN \(/,
    );
    await applyRepair(t);
    await clean(m);
  });

  it('an index dropped: missing, with CREATE INDEX CONCURRENTLY as the repair; an invalid one is found too', async () => {
    const m = await inDualWrite('unindexed');
    const index = m.newColumn.index!.name;
    await suite.knex.raw('DROP INDEX ??', [index]);
    const f = only(await pf.migration(m).drift());
    assert.deepEqual([f.object, f.name, f.actual], ['index', index, 'missing']);
    assert.match(f.repair.sql ?? '', /CREATE INDEX CONCURRENTLY "[^"]+" ON "[^"]+"\."orders_unindexed" \("amount"\)/);
    await applyRepair(f);
    await clean(m);
    // An index left INVALID (as a failed CONCURRENTLY build leaves it).
    await suite.knex.raw(
      'UPDATE pg_index SET indisvalid = false WHERE indexrelid = (SELECT oid FROM pg_class WHERE relname = ? AND relnamespace = ?::regnamespace)',
      [index, suite.schema],
    );
    const invalid = only(await pf.migration(m).drift());
    assert.match(invalid.actual, /INVALID/);
    await applyRepair(invalid);
    await clean(m);
  });

  it('the sync trigger disabled: found with ENABLE TRIGGER as the repair, and its function edited by hand too', async () => {
    const m = await inDualWrite('untriggered');
    const triggers = (
      await suite.knex.raw(
        "SELECT tgname FROM pg_trigger WHERE tgrelid = 'orders_untriggered'::regclass AND NOT tgisinternal ORDER BY tgname",
      )
    ).rows.map((x: { tgname: string }) => x.tgname) as string[];
    // Two triggers: BEFORE UPDATE … WHEN, and BEFORE INSERT.
    assert.deepEqual(triggers, ['zz_pf_sync_untriggered', 'zz_pf_sync_untriggered_insert']);
    const trigger = triggers[0]!;
    await suite.knex.raw('ALTER TABLE orders_untriggered DISABLE TRIGGER ??', [trigger]);
    const f = only(await pf.migration(m).drift());
    assert.deepEqual([f.object, f.name, f.actual], ['sync trigger', trigger, 'disabled']);
    assert.match(
      f.repair.sql ?? '',
      /ALTER TABLE "[^"]+"\."orders_untriggered" ENABLE TRIGGER "zz_pf_sync_untriggered"/,
    );
    await applyRepair(f);
    await clean(m);

    const fn = 'pf_sync_untriggered';
    await suite.knex.raw(
      `CREATE OR REPLACE FUNCTION ??.??() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$`,
      [suite.stateSchema, fn],
    );
    const edited = only(await pf.migration(m).drift());
    assert.deepEqual([edited.object, edited.name], ['sync function', fn]);
    assert.match(edited.actual, /another body/);
    assert.match(edited.repair.sql ?? '', /CREATE OR REPLACE FUNCTION/);
    await applyRepair(edited);
    await clean(m);
  });

  it('a check left NOT VALID: found with VALIDATE CONSTRAINT as the repair', async () => {
    const m = await inDualWrite('unvalidated');
    const check = m.newColumn.check!;
    await suite.knex.raw('ALTER TABLE orders_unvalidated DROP CONSTRAINT ??', [check.name]);
    await suite.knex.raw(`ALTER TABLE orders_unvalidated ADD CONSTRAINT ?? CHECK (amount >= 0) NOT VALID`, [
      check.name,
    ]);
    const f = only(await pf.migration(m).drift());
    assert.deepEqual([f.object, f.name], ['check', check.name]);
    assert.match(f.actual, /NOT VALID/);
    assert.match(f.repair.sql ?? '', /VALIDATE CONSTRAINT/);
    await applyRepair(f);
    await clean(m);
  });

  it('columns dropped by hand: the old one before contract, and the new one, each named with what to do', async () => {
    const m = await inDualWrite('dropped_old');
    await suite.knex.raw('ALTER TABLE orders_dropped_old DROP COLUMN amount_cents CASCADE');
    const r = await pf.migration(m).drift();
    const old = r.findings.find((f) => f.object === 'old column');
    assert.ok(old, JSON.stringify(r.findings, null, 2));
    assert.equal(old.name, 'amount_cents');
    assert.equal(old.actual, 'missing');
    assert.match(old.repair.note ?? '', /values are gone/);
    assert.equal(r.blocking, true);

    const n = await inDualWrite('dropped_new');
    await suite.knex.raw('ALTER TABLE orders_dropped_new DROP COLUMN amount CASCADE');
    const rn = await pf.migration(n).drift();
    const f = rn.findings.find((x) => x.object === 'new column');
    assert.ok(f, JSON.stringify(rn.findings, null, 2));
    assert.equal(f.actual, 'missing');
    assert.equal(f.repair.command, 'phaseflag rollback dropped_new && phaseflag expand dropped_new');
    // The index, the check and the UPDATE trigger (its WHEN clause names the column) went with it: found as well.
    assert.deepEqual(rn.findings.map((x) => x.object).sort(), ['check', 'index', 'new column', 'sync trigger']);
  });

  it('a foreign key dropped after verify (which added it): missing, with ADD … NOT VALID then VALIDATE as the repair', async () => {
    await suite.knex.raw(
      `CREATE TABLE customers (id bigint PRIMARY KEY); INSERT INTO customers SELECT g FROM generate_series(1, 10) g;
       CREATE TABLE orders_fk (id bigserial PRIMARY KEY, customer_ref text NOT NULL);
       INSERT INTO orders_fk (customer_ref) SELECT 'C' || (1 + g % 10) FROM generate_series(1, 100) g`,
    );
    const m = defineMigration({
      id: 'fk',
      table: 'orders_fk',
      oldColumn: 'customer_ref',
      newColumn: { name: 'customer_id', type: 'bigint', references: { table: 'customers', column: 'id' } },
      backfill: 'substr(customer_ref, 2)::bigint',
      reverse: "'C' || customer_id::text",
    });
    const h = pf.migration(m);
    await h.expand();
    await h.startDualWrite();
    await h.backfill();
    await h.verify();
    await clean(m);
    const fk = m.newColumn.references!.name;
    await suite.knex.raw('ALTER TABLE orders_fk DROP CONSTRAINT ??', [fk]);
    const f = only(await pf.migration(m).drift());
    assert.deepEqual([f.object, f.name, f.actual], ['foreign key', fk, 'missing']);
    assert.match(
      f.repair.sql ?? '',
      /ADD CONSTRAINT "[^"]+" FOREIGN KEY \("customer_id"\) REFERENCES "[^"]+"\."customers" \("id"\) ON DELETE NO ACTION NOT VALID;\nALTER TABLE .* VALIDATE CONSTRAINT/,
    );
    await applyRepair(f);
    await clean(m);
  });

  it('a step not run yet is not drift: pending implies nothing of the new column; the store-wide form covers every migration', async () => {
    await createAmountTable(suite.knex, 'orders_pending', 10);
    const m = defineMigration(amountInput('pending', 'orders_pending'));
    await pf.migration(m).register();
    await suite.knex.raw('ALTER TABLE orders_pending ADD COLUMN amount numeric(12,2)');
    await clean(m);
    const all = await pf.drift([m, defineMigration(amountInput('clean', 'orders_clean'))]);
    assert.equal(all.migrations.length, 2);
    assert.equal(all.stateStore.version, all.stateStore.latest);
    assert.equal(all.drifted, false);
  });
});
