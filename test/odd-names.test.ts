import assert from 'node:assert/strict';
import { defineMigration, quoteIdent, StaticFlagSource, type MigrationInput } from '@phaseflag/core';
import type { KnexRouter, Phaseflag } from '@phaseflag/postgres';
import { internalsOf } from '@phaseflag/postgres/internal';
import { createSuiteSchema, startLoad, waitFor, type LoadOp, type Suite } from '@phaseflag/testkit';
import type { Knex } from 'knex';
import { engine } from './support/orders.js';

/**
 * Real schemas use any name Postgres accepts quoted. Every name here would break SQL built by pasting, by knex's
 * identifier wrapping (which splits on "." and reads " as " and "?"), or by a lookup through an unquoted regclass.
 */
const KEY = ['order', 'Line.No'] as const; // a keyword and a dot
const OLD = 'Payload Json';
const NEW = 'Payload.V2 "jsonb" as ?'; // dot, quotes, " as ", "?"
const q = (name: string) => `"${name.replace(/"/g, '""')}"`; // in the expressions the user writes
const ROWS = 3000;

for (const trigger of [false, true]) {
  describe(`names Postgres accepts only quoted, through a whole life cycle (sync trigger ${trigger ? 'on' : 'off'})`, function () {
    this.timeout(300_000);
    let suite: Suite;
    let pf: Phaseflag;
    let schema: string;
    const table = 'order-lines';
    const tableSql = () => `${quoteIdent(schema)}.${quoteIdent(table)}`;

    before(async () => {
      suite = await createSuiteSchema('odd-names', { pool: { min: 0, max: 12 } });
      schema = `Sales Data ${suite.stateSchema.slice(-8)}`; // the suite's random suffix: its own schema
      await suite.knex.raw(`CREATE SCHEMA ${quoteIdent(schema)}`);
      await suite.knex.raw(`CREATE TABLE ${tableSql()} (
      "order" integer NOT NULL, "Line.No" integer NOT NULL, "Payload Json" text NOT NULL DEFAULT '{}',
      "Bestellwert €" integer NOT NULL, "金额" text, "UPPER" text, "$price" integer, "select" text,
      PRIMARY KEY ("order", "Line.No"))`);
      await suite.knex.raw(
        `INSERT INTO ${tableSql()} SELECT g / 10, g % 10, jsonb_build_object('Bestellwert €', g, 'note', 'we"ird ' || chr(63))::text,
              g, '金额 ' || g, 'U', g, 'sel' FROM generate_series(1, ?::int) AS g`,
        [ROWS],
      );
      await suite.knex.raw(`ANALYZE ${tableSql()}`);
      pf = engine(suite);
      await pf.install();
    });

    after(async () => {
      await pf?.close();
      await suite?.knex.raw(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`).catch(() => undefined);
      await suite?.cleanup();
    });

    const migration = (overrides: Partial<MigrationInput> = {}) =>
      defineMigration({
        id: 'odd-names',
        table: `${q(schema)}.${q(table)}`,
        primaryKey: [...KEY],
        oldColumn: OLD,
        newColumn: {
          name: NEW,
          type: 'jsonb',
          nullable: false,
          index: { name: 'idx "€" select' },
          check: { name: 'chk.金额 as x', expression: `jsonb_typeof(${q(NEW)}) = 'object'` },
        },
        backfill: `${q(OLD)}::jsonb`,
        reverse: `${q(NEW)}::text`,
        batch: { size: 500, targetBatchMs: 0 },
        ddl: { lockTimeoutMs: 500, retryBaseMs: 20, retryMaxMs: 200 },
        // Off: the router itself writes both columns, deriving the missing one in SQL. On: the router writes the
        // old column and the trigger's PL/pgSQL derives the new one, naming every column.
        sync: { trigger },
        ...overrides,
      });

    /** The application writes through the router with raw SQL (knex's builder would split "Line.No"). */
    const routerOps = (router: KnexRouter): LoadOp[] => {
      let next = ROWS + 1;
      const rand = () => 1 + Math.floor(Math.random() * ROWS);
      const where = `${quoteIdent(KEY[0])} = ? AND ${quoteIdent(KEY[1])} = ?`;
      const payload = (n: number) => JSON.stringify({ 'Bestellwert €': n, note: 'app' });
      return [
        {
          name: 'insert',
          weight: 1,
          run: async (_i, db) => {
            const n = next++;
            const row = router.row({ order: -n, 'Line.No': 0, [OLD]: payload(n), 'Bestellwert €': n });
            const cols = Object.keys(row);
            await db.raw(
              `INSERT INTO ${tableSql()} (${cols.map(quoteIdent).join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`,
              cols.map((c) => row[c]),
            );
          },
        },
        {
          name: 'update',
          weight: 2,
          run: async (_i, db) => {
            const g = rand();
            const row = router.row({ [OLD]: payload(g + 1), 'Bestellwert €': g });
            const cols = Object.keys(row);
            await db.raw(
              `UPDATE ${tableSql()} SET ${cols.map((c) => `${quoteIdent(c)} = ?`).join(', ')} WHERE ${where}`,
              [...cols.map((c) => row[c]), Math.floor(g / 10), g % 10],
            );
          },
        },
        {
          name: 'read',
          weight: 3,
          run: async (_i, db) => {
            const g = rand();
            const rows = await db
              .select(
                router.select(undefined, { as: 'payload' }),
                router.select(undefined, { table: `${q(schema)}.${q(table)}` }),
              )
              .from(db.raw(tableSql()))
              .whereRaw(where, [Math.floor(g / 10), g % 10]);
            if (rows.length === 1) assert.equal(typeof rows[0].payload, 'object', 'the new meaning: jsonb');
          },
        },
      ];
    };

    const wrong = async (): Promise<number> =>
      (
        await suite.knex.raw(
          `SELECT count(*)::int AS n FROM ${tableSql()} WHERE ${quoteIdent(NEW)} IS DISTINCT FROM ${quoteIdent(OLD)}::jsonb`,
        )
      ).rows[0].n as number;
    const columns = async (): Promise<string[]> =>
      (
        await suite.knex.raw(
          `SELECT attname FROM pg_attribute WHERE attrelid = (SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = ? AND c.relname = ?) AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
          [schema, table],
        )
      ).rows.map((r: { attname: string }) => r.attname);

    it(`expand → dual-write → backfill → verify → read-new → contract, the router writing ${trigger ? 'the old column' : 'both columns'}`, async () => {
      const m = pf.migration(migration());
      const flags = new StaticFlagSource({ 'odd-names.read-new': true });
      const router = await m.router(flags, { heartbeatMs: 200 });
      const appDb: Knex = suite.newKnex({ pool: { min: 0, max: 4 } });
      const load = startLoad({ knex: appDb, concurrency: 3, ops: routerOps(router) });
      const step = async (name: string, fn: () => Promise<unknown>) => {
        await fn();
        const phase = (await m.status()).phase;
        await waitFor(() => router.core.currentPhase === phase, { description: `the router to apply ${phase}` });
        const before = load.snapshot().ops;
        await waitFor(() => load.snapshot().ops >= before + 20, { description: `traffic after ${name}` });
        const s = load.snapshot();
        assert.equal(s.errors, 0, `errors after ${name}: ${JSON.stringify(s.errorSamples.slice(0, 3))}`);
        return phase;
      };
      const phases = [
        await step('expand', () => m.expand()),
        await step('dual-write', () => m.startDualWrite()),
        await step('backfill', () => m.backfill()),
        await step('verify', () => m.verify()),
        await step('read-new', () => m.readNew()),
      ];
      assert.equal(router.column(), NEW);
      assert.equal(await wrong(), 0, 'every row derived right before contract');
      await waitFor(async () => (await internalsOf(pf).store.instances('odd-names', 5000)).every((i) => !i.readsOld), {
        description: 'the router to report reads of the new column only',
      });
      phases.push(await step('contract', () => m.contract({ confirm: true, dropOldColumn: true })));
      const report = await load.stop();
      await appDb.destroy();
      await router.close();

      assert.deepEqual(phases, ['expanded', 'dual-write', 'backfilled', 'verified', 'read-new', 'contracted']);
      assert.equal(report.errors, 0, JSON.stringify(report.errorSamples.slice(0, 3)));
      assert.ok(report.ops > 100, `traffic ran throughout (${report.ops} ops)`);
      const cols = await columns();
      assert.ok(cols.includes(NEW) && !cols.includes(OLD), cols.join(', '));
      const objects = (
        await suite.knex.raw(
          `SELECT (SELECT count(*)::int FROM pg_class WHERE relname = 'idx "€" select') AS idx,
                (SELECT count(*)::int FROM pg_constraint WHERE conname = 'chk.金额 as x' AND convalidated) AS chk,
                (SELECT attnotnull FROM pg_attribute WHERE attrelid = ?::regclass AND attname = ?) AS notnull,
                (SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE adrelid = ?::regclass) AS default`,
          [`${q(schema)}.${q(table)}`, NEW, `${q(schema)}.${q(table)}`],
        )
      ).rows[0];
      assert.deepEqual(
        objects,
        { idx: 1, chk: 1, notnull: true, default: "'{}'::jsonb" },
        'the old default carried over',
      );
    });

    if (trigger)
      it('rolls back from verified with the sync trigger on: trigger, function and column gone', async () => {
        const other = '金额 Tabelle?'; // "?": knex's placeholder, and regclass input does not read U&"…"
        const t = `${quoteIdent(schema)}.${quoteIdent(other)}`;
        await suite.knex.raw(`CREATE TABLE ${t} ("ID" bigint PRIMARY KEY, "Bestellwert €" integer NOT NULL)`);
        await suite.knex.raw(`INSERT INTO ${t} SELECT g, g * 7 FROM generate_series(1, 500) AS g`);
        const m = pf.migration(
          defineMigration({
            id: 'odd-names-rollback',
            table: { schema, name: other },
            primaryKey: 'ID',
            oldColumn: 'Bestellwert €',
            newColumn: { name: 'select?', type: 'numeric(12,2)' },
            backfill: `${q('Bestellwert €')}::numeric / 100`,
            reverse: `(${q('select?')} * 100)::integer`,
          }),
        );
        await m.expand();
        await m.startDualWrite();
        // Writers that know nothing of phaseflag: the sync trigger (PL/pgSQL over these names) derives the other side.
        await suite.knex.raw(`INSERT INTO ${t} ("ID", "Bestellwert €") VALUES (1001, 250)`);
        await suite.knex.raw(`INSERT INTO ${t} ("ID", ${quoteIdent('select?')}) VALUES (1002, 3.5)`);
        const derived = await suite.knex.raw(
          `SELECT "ID"::int AS id, "Bestellwert €" AS old, ${quoteIdent('select?')}::text AS new FROM ${t} WHERE "ID" > 1000 ORDER BY 1`,
        );
        assert.deepEqual(derived.rows, [
          { id: 1001, old: 250, new: '2.50' },
          { id: 1002, old: 350, new: '3.50' },
        ]);
        await m.backfill();
        await m.verify();
        assert.equal((await m.status()).phase, 'verified');
        await m.rollback();
        assert.equal((await m.status()).phase, 'rolled-back');
        const left = (
          await suite.knex.raw(
            `SELECT (SELECT count(*)::int FROM pg_attribute WHERE attrelid = c.oid AND attname = ? AND NOT attisdropped) AS columns,
                (SELECT count(*)::int FROM pg_trigger WHERE tgrelid = c.oid AND NOT tgisinternal) AS triggers,
                (SELECT count(*)::int FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = ? AND p.proname NOT IN ('pf_ddl_watch', 'pf_ddl_watch_drop')) AS functions
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ? AND c.relname = ?`,
            ['select?', suite.stateSchema, schema, other],
          )
        ).rows[0];
        assert.deepEqual(
          left,
          { columns: 0, triggers: 0, functions: 1 },
          "only the state schema's own recording function",
        );
      });
  });
}
