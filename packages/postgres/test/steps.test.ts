import assert from 'node:assert/strict';
import { ATTR, LockTimeoutError, SPAN, defineMigration, isPhaseflagError, type MigrationInput } from '@phaseflag/core';
import { captureMetrics, captureSpans, createSuiteSchema, startLoad, type SpanCapture, type Suite } from '@phaseflag/testkit';
import { resolveMigration } from '../src/catalog/resolve.js';
import { createContext, type ExecutorContext } from '../src/context.js';
import type { ResolvedMigration } from '../src/catalog/resolved.js';
import { addCheck } from '../src/operations/steps/add-check.js';
import { createIndex } from '../src/operations/steps/create-index.js';
import { dropNewColumn, dropOldColumn } from '../src/operations/steps/drop-column.js';
import { dropNotNull } from '../src/operations/steps/drop-not-null.js';
import { applySteps, expandSteps, rollbackSteps } from '../src/operations/steps/phase-steps.js';
import { setNotNull } from '../src/operations/steps/set-not-null.js';
import { syncTrigger, syncTriggerInstalled } from '../src/operations/steps/sync-trigger.js';
import { planMigration } from '../src/operations/plan.js';
import { installStateStore } from '../src/store/installer.js';
import { catalogSnapshot } from './support/catalog-snapshot.js';

const fastDdl = { lockTimeoutMs: 200, nonBlockingLockTimeoutMs: 200, statementTimeoutMs: 0, maxAttempts: 100, retryBaseMs: 50, retryMaxMs: 200 };

describe('steps', function () {
  let suite: Suite;
  let ctx: ExecutorContext;
  let spans: SpanCapture;

  const resolve = (input: MigrationInput): Promise<ResolvedMigration> => resolveMigration(ctx.knex, defineMigration({ ddl: fastDdl, ...input }));
  const ddlStatements = () => spans.byName(SPAN.ddl).map((s) => String(s.attributes[ATTR.statement]));
  const table = async (name: string, rows = 2000, extra = '') => {
    await ctx.knex.raw(`CREATE TABLE ?? (id bigint PRIMARY KEY, amount numeric NOT NULL, note text${extra});
      INSERT INTO ?? (id, amount, note) SELECT g, g * 1.5, 'n' || g FROM generate_series(1, ${rows}) g; ANALYZE ??`, [name, name, name]);
  };
  const column = async (t: string, c: string) => (await ctx.knex.raw(
    `SELECT format_type(atttypid, atttypmod) AS type, attnotnull AS "notNull" FROM pg_attribute WHERE attrelid = ?::regclass AND attname = ? AND NOT attisdropped`,
    [t, c])).rows[0] as { type: string; notNull: boolean } | undefined;

  /** The application: point reads and updates of rows first..last of a table, on a pool of its own. */
  const appTraffic = (t: string, first: number, last: number) => {
    const app = suite.newKnex({ pool: { min: 0, max: 4 } });
    const id = (i: number) => first + (i % (last - first + 1));
    const load = startLoad({
      knex: app, concurrency: 4,
      ops: [
        { name: 'select', run: async (i, k) => { await k.raw('SELECT note FROM ?? WHERE id = ?', [t, id(i)]); } },
        { name: 'update', run: async (i, k) => { await k.raw('UPDATE ?? SET note = ? WHERE id = ?', [t, `u${i}`, id(i)]); } },
      ],
    });
    return { app, load };
  };

  before(async () => {
    captureMetrics();
    spans = captureSpans();
    suite = await createSuiteSchema('steps');
    ctx = createContext({ knex: suite.knex, stateSchema: suite.stateSchema });
    await installStateStore(ctx);
  });
  after(async () => {
    await suite?.cleanup();
  });
  beforeEach(() => spans.reset());

  describe('expand', () => {
    it('adds a nullable column with a constant default without rewriting the table, then its index and validated check', async () => {
      await table('exp');
      const relfilenode = (await ctx.knex.raw("SELECT relfilenode FROM pg_class WHERE oid = 'exp'::regclass")).rows[0].relfilenode;
      const r = await resolve({
        id: 'exp', table: 'exp', oldColumn: 'amount', backfill: 'round(amount * 100)',
        newColumn: { name: 'amount_cents', type: 'bigint', default: 0, index: true, check: 'amount_cents >= 0' },
      });
      await applySteps(ctx, r, expandSteps(r));

      assert.deepEqual(await column('exp', 'amount_cents'), { type: 'bigint', notNull: false });
      assert.equal((await ctx.knex.raw("SELECT relfilenode FROM pg_class WHERE oid = 'exp'::regclass")).rows[0].relfilenode, relfilenode);
      assert.equal((await ctx.knex.raw('SELECT count(*)::int AS n FROM exp WHERE amount_cents = 0')).rows[0].n, 2000);
      const idx = (await ctx.knex.raw("SELECT indisvalid FROM pg_index WHERE indexrelid = 'pf_idx_exp'::regclass")).rows[0];
      assert.equal(idx.indisvalid, true);
      const chk = (await ctx.knex.raw("SELECT convalidated FROM pg_constraint WHERE conname = 'pf_chk_exp'")).rows[0];
      assert.equal(chk.convalidated, true);

      const ddl = spans.byName(SPAN.ddl);
      assert.deepEqual(ddl.map((s) => s.attributes[ATTR.lockMode]), ['ACCESS EXCLUSIVE', 'SHARE UPDATE EXCLUSIVE', 'ACCESS EXCLUSIVE', 'SHARE UPDATE EXCLUSIVE']);
      assert.match(String(ddl[0]!.attributes[ATTR.statement]), /ADD COLUMN IF NOT EXISTS "amount_cents" bigint DEFAULT '0'::bigint$/);
      assert.match(String(ddl[1]!.attributes[ATTR.statement]), /^CREATE INDEX CONCURRENTLY IF NOT EXISTS "pf_idx_exp"/);
      assert.match(String(ddl[2]!.attributes[ATTR.statement]), /CHECK \(\namount_cents >= 0\n\) NOT VALID$/);
      assert.match(String(ddl[3]!.attributes[ATTR.statement]), /VALIDATE CONSTRAINT "pf_chk_exp"$/);
      for (const s of ddl) assert.equal(s.attributes[ATTR.migrationId], 'exp');
    });

    it('runs again without executing any DDL or changing anything', async () => {
      const r = await resolve({
        id: 'exp', table: 'exp', oldColumn: 'amount', backfill: 'round(amount * 100)',
        newColumn: { name: 'amount_cents', type: 'bigint', default: 0, index: true, check: 'amount_cents >= 0' },
      });
      const before = await catalogSnapshot(ctx.knex, [suite.schema]);
      await applySteps(ctx, r, expandSteps(r));
      assert.deepEqual(ddlStatements(), []);
      assert.deepEqual(await catalogSnapshot(ctx.knex, [suite.schema]), before);
    });

    it('rebuilds a unique index left INVALID by a failed concurrent build, once the duplicates are fixed', async () => {
      await table('dup', 500, ', code int');
      await ctx.knex.raw('UPDATE dup SET code = id % 400'); // 100 duplicated codes
      const r = await resolve({
        id: 'dup', table: 'dup', oldColumn: 'note', backfill: 'length(note)',
        newColumn: { name: 'code', type: 'integer', index: { name: 'dup_code_key', unique: true } },
      });
      await assert.rejects(applySteps(ctx, r, expandSteps(r)), (e: unknown) => isPhaseflagError(e, 'PF_DDL_FAILED') && /could not create unique index/.test(e.message));
      const invalid = (await ctx.knex.raw("SELECT indisvalid FROM pg_index WHERE indexrelid = 'dup_code_key'::regclass")).rows[0];
      assert.equal(invalid.indisvalid, false, 'a failed CONCURRENTLY build leaves an invalid index behind');

      await ctx.knex.raw('UPDATE dup SET code = id');
      spans.reset();
      await applySteps(ctx, await resolve({
        id: 'dup', table: 'dup', oldColumn: 'note', backfill: 'length(note)',
        newColumn: { name: 'code', type: 'integer', index: { name: 'dup_code_key', unique: true } },
      }), expandSteps(r));
      assert.deepEqual(ddlStatements().map((s) => s.split(' ').slice(0, 4).join(' ')), ['DROP INDEX CONCURRENTLY IF', 'CREATE UNIQUE INDEX CONCURRENTLY']);
      const valid = (await ctx.knex.raw("SELECT indisvalid, indisunique FROM pg_index WHERE indexrelid = 'dup_code_key'::regclass")).rows[0];
      assert.deepEqual(valid, { indisvalid: true, indisunique: true });
    });

    it('validates a check that a failed run left NOT VALID, once the offending rows are fixed', async () => {
      await table('chk', 300, ', score int');
      await ctx.knex.raw('UPDATE chk SET score = id - 10'); // ten negative scores
      const input: MigrationInput = { id: 'chk', table: 'chk', oldColumn: 'note', backfill: 'length(note)', newColumn: { name: 'score', type: 'int', check: 'score >= 0' } };
      await assert.rejects(applySteps(ctx, await resolve(input), expandSteps(await resolve(input))), (e: unknown) => isPhaseflagError(e, 'PF_DDL_FAILED'));
      assert.equal((await ctx.knex.raw("SELECT convalidated FROM pg_constraint WHERE conname = 'pf_chk_chk'")).rows[0].convalidated, false);
      await ctx.knex.raw('UPDATE chk SET score = abs(score)');
      spans.reset();
      const r = await resolve(input);
      await applySteps(ctx, r, expandSteps(r));
      assert.deepEqual(ddlStatements().map((s) => s.replace(/^.* (VALIDATE|ADD) .*$/s, '$1')), ['VALIDATE']);
      assert.equal((await ctx.knex.raw("SELECT convalidated FROM pg_constraint WHERE conname = 'pf_chk_chk'")).rows[0].convalidated, true);
    });

    it('waits behind a long-running transaction without stalling application queries, retrying until it ends', async function () {
      await table('busy', 5000);
      const r = await resolve({ id: 'busy', table: 'busy', oldColumn: 'amount', backfill: 'round(amount * 100)', newColumn: { name: 'amount_cents', type: 'bigint' } });
      // The long transaction: a report that read the table and is still open (ACCESS SHARE until it ends).
      const longTx = await suite.newKnex({ pool: { min: 0, max: 1 } }).transaction();
      await longTx.raw('SELECT sum(amount) FROM busy');
      const { load } = appTraffic('busy', 1, 5000);
      const holdMs = 1500;
      const endLongTx = setTimeout(() => void longTx.commit(), holdMs);
      const started = Date.now();
      try {
        await applySteps(ctx, r, expandSteps(r));
      } finally {
        clearTimeout(endLongTx);
        await longTx.commit().catch(() => undefined);
      }
      const tookMs = Date.now() - started;
      const report = await load.stop();

      assert.ok(tookMs >= holdMs - 100, `expand finished after ${tookMs} ms, before the long transaction ended`);
      assert.ok(await column('busy', 'amount_cents'));
      const [span] = spans.byName(SPAN.ddl);
      const attempts = Number(span!.attributes[ATTR.attempts]);
      assert.ok(attempts > 1, `attempts ${attempts}`);
      assert.equal(report.errors, 0, JSON.stringify(report.errorSamples));
      const limit = fastDdl.lockTimeoutMs + 400;
      for (const [op, stats] of Object.entries(report.byOp)) {
        assert.ok(stats.ops > 20, `${op}: only ${stats.ops} ops ran while expand waited`);
        assert.ok(stats.maxMs < limit, `${op}: an application statement stalled ${stats.maxMs} ms (limit ${limit})`);
      }
      console.log(`      (expand waited ${tookMs} ms in ${attempts} attempts; app ops ${report.ops}, max ${Math.max(...Object.values(report.byOp).map((s) => s.maxMs)).toFixed(0)} ms)`);
    });

    it('builds its index behind a long writer in one attempt (nonBlockingLockTimeoutMs), never stalling application queries', async function () {
      await table('slowidx', 5000, ', code int');
      // A writer's transaction that stays open: CREATE INDEX CONCURRENTLY waits for it to end before building.
      const longTx = await suite.newKnex({ pool: { min: 0, max: 1 } }).transaction();
      await longTx.raw('UPDATE slowidx SET note = note WHERE id = 1');
      const { app, load } = appTraffic('slowidx', 2, 5000); // row 1 is the long writer's
      const holdMs = 1500;
      const endLongTx = setTimeout(() => void longTx.commit(), holdMs);
      const r = await resolve({
        id: 'slowidx', table: 'slowidx', oldColumn: 'amount', backfill: 'round(amount)', newColumn: { name: 'code', type: 'int', index: true },
        // lock_timeout 200 ms would give up 7 times over; the build's own, longer timeout lets it wait once.
        ddl: { ...fastDdl, nonBlockingLockTimeoutMs: 10_000 },
      });
      try {
        await createIndex.apply(ctx, r);
      } finally {
        clearTimeout(endLongTx);
        await longTx.commit().catch(() => undefined);
      }
      const report = await load.stop();
      await app.destroy();
      const builds = spans.byName(SPAN.ddl).filter((x) => /^CREATE INDEX CONCURRENTLY/.test(String(x.attributes[ATTR.statement])));
      assert.equal(builds.length, 1, 'one build');
      assert.equal(Number(builds[0]!.attributes[ATTR.attempts]), 1, 'in one attempt');
      assert.ok(Number(builds[0]!.attributes[ATTR.lockWaitMs]) === 0, 'a session statement reports no LOCK TABLE wait');
      assert.equal((await ctx.knex.raw("SELECT indisvalid FROM pg_index WHERE indexrelid = 'pf_idx_slowidx'::regclass")).rows[0].indisvalid, true);
      assert.equal(report.errors, 0, JSON.stringify(report.errorSamples));
      const limit = fastDdl.lockTimeoutMs + 400;
      for (const [op, stats] of Object.entries(report.byOp)) {
        assert.ok(stats.ops > 20, `${op}: only ${stats.ops} ops ran while the index build waited`);
        assert.ok(stats.maxMs < limit, `${op}: an application statement stalled ${stats.maxMs} ms (limit ${limit})`);
      }
    });

    it('plans a SHARE UPDATE EXCLUSIVE statement with nonBlockingLockTimeoutMs and an ACCESS EXCLUSIVE one with lockTimeoutMs', async () => {
      const { maxLockWait, lockTimeoutFor } = await import('../src/operations/ddl.js');
      const ddl = { lockTimeoutMs: 2000, nonBlockingLockTimeoutMs: 60_000, maxAttempts: 3 };
      assert.equal(lockTimeoutFor('ACCESS EXCLUSIVE', ddl), 2000);
      assert.equal(lockTimeoutFor('SHARE ROW EXCLUSIVE', ddl), 2000);
      assert.equal(lockTimeoutFor('SHARE', ddl), 2000, 'SHARE blocks writers while it waits');
      assert.equal(lockTimeoutFor('SHARE UPDATE EXCLUSIVE', ddl), 60_000);
      assert.equal(maxLockWait('SHARE UPDATE EXCLUSIVE', ddl), 180_000);
      assert.equal(maxLockWait('ACCESS EXCLUSIVE', ddl), 6000);
      assert.equal(maxLockWait('NONE', ddl), 0);
      assert.equal(lockTimeoutFor('SHARE UPDATE EXCLUSIVE', { ...ddl, lockTimeoutMs: 90_000 }), 90_000, 'never shorter than lockTimeoutMs');
    });

    it('fails with PF_LOCK_TIMEOUT after maxAttempts behind a transaction that does not end, leaving the table unchanged', async () => {
      await table('stuck', 100);
      const r = await resolveMigration(ctx.knex, defineMigration({
        id: 'stuck', table: 'stuck', oldColumn: 'amount', backfill: 'round(amount)', newColumn: { name: 'amount_int', type: 'bigint' },
        ddl: { ...fastDdl, lockTimeoutMs: 50, maxAttempts: 3, retryBaseMs: 10, retryMaxMs: 20 },
      }));
      const longTx = await suite.newKnex({ pool: { min: 0, max: 1 } }).transaction();
      await longTx.raw('SELECT count(*) FROM stuck');
      try {
        await assert.rejects(applySteps(ctx, r, expandSteps(r)), (e: unknown) => e instanceof LockTimeoutError && e.attempts === 3);
      } finally {
        await longTx.commit();
      }
      assert.equal(await column('stuck', 'amount_int'), undefined);
    });
  });

  describe('set-not-null', () => {
    it('sets NOT NULL through a validated CHECK, so SET NOT NULL itself does not scan, and drops the helper', async () => {
      await table('nn', 1000, ', cents bigint');
      await ctx.knex.raw('UPDATE nn SET cents = id * 150');
      const r = await resolve({ id: 'nn', table: 'nn', oldColumn: 'amount', backfill: 'round(amount * 100)', newColumn: { name: 'cents', type: 'bigint', nullable: false } });
      // Postgres reports at DEBUG1 when existing constraints prove a column has no NULLs and the scan is skipped.
      const notices: string[] = [];
      const watched = suite.newKnex({
        pool: {
          min: 0, max: 2,
          afterCreate: (conn: { on: (e: string, f: (n: { message: string }) => void) => void; query: (s: string, cb: (e: Error | null) => void) => void }, done: (e: Error | null, c: unknown) => void) => {
            conn.on('notice', (n) => notices.push(n.message));
            conn.query('SET client_min_messages = debug1', (e) => done(e, conn));
          },
        },
      });
      const wctx = createContext({ knex: watched, stateSchema: suite.stateSchema });
      await setNotNull.apply(wctx, r);

      assert.deepEqual(await column('nn', 'cents'), { type: 'bigint', notNull: true });
      assert.ok(notices.some((n) => /existing constraints on column "nn.cents" are sufficient to prove that it does not contain nulls/.test(n)),
        `no proof notice among: ${notices.join(' | ')}`);
      assert.equal((await ctx.knex.raw("SELECT count(*)::int AS n FROM pg_constraint WHERE conname = 'pf_nn_nn'")).rows[0].n, 0);
      const ddl = spans.byName(SPAN.ddl).map((s) => [s.attributes[ATTR.lockMode], String(s.attributes[ATTR.statement]).split('\n')[0]!.replace(/^ALTER TABLE \S+ /, '')]);
      assert.deepEqual(ddl, [
        ['ACCESS EXCLUSIVE', 'ADD CONSTRAINT "pf_nn_nn" CHECK ("cents" IS NOT NULL) NOT VALID'],
        ['SHARE UPDATE EXCLUSIVE', 'VALIDATE CONSTRAINT "pf_nn_nn"'],
        ['ACCESS EXCLUSIVE', 'ALTER COLUMN "cents" SET NOT NULL;'],
      ]);

      spans.reset();
      await setNotNull.apply(ctx, r);
      assert.deepEqual(ddlStatements(), [], 'a second run does nothing');
      await setNotNull.rollback(ctx, r);
      assert.deepEqual(await column('nn', 'cents'), { type: 'bigint', notNull: false });
    });

    it('stops at VALIDATE while rows are NULL and resumes from there once they are filled', async () => {
      await table('nn2', 200, ', cents bigint');
      await ctx.knex.raw('UPDATE nn2 SET cents = id WHERE id > 5');
      const r = await resolve({ id: 'nn2', table: 'nn2', oldColumn: 'amount', backfill: 'round(amount * 100)', newColumn: { name: 'cents', type: 'bigint', nullable: false } });
      await assert.rejects(setNotNull.apply(ctx, r), (e: unknown) => isPhaseflagError(e, 'PF_DDL_FAILED') && /violated by some row/.test(e.message));
      assert.equal((await column('nn2', 'cents'))!.notNull, false);
      await ctx.knex.raw('UPDATE nn2 SET cents = 0 WHERE cents IS NULL');
      spans.reset();
      await setNotNull.apply(ctx, r);
      assert.equal(ddlStatements().length, 2, 'the helper check is reused: VALIDATE, then SET NOT NULL');
      assert.equal((await column('nn2', 'cents'))!.notNull, true);
    });
  });

  describe('plan', () => {
    it('lays out every phase with its exact SQL, lock and longest lock wait, as JSON, executing nothing', async () => {
      await table('planned', 100);
      await ctx.knex.raw('ALTER TABLE planned ALTER COLUMN note SET NOT NULL');
      const before = await catalogSnapshot(ctx.knex, [suite.schema, suite.stateSchema]);
      spans.reset();
      const plan = await planMigration(ctx, defineMigration({
        id: 'planned', table: 'planned', oldColumn: 'note', backfill: 'upper(note)', reverse: 'lower(note_v2)',
        newColumn: { name: 'note_v2', type: 'varchar(40)', nullable: false, index: { unique: true }, check: 'length(note_v2) > 0', default: 'n/a' },
        ddl: { lockTimeoutMs: 500, maxAttempts: 4 },
      }), { dropOldColumn: true });
      assert.deepEqual(await catalogSnapshot(ctx.knex, [suite.schema, suite.stateSchema]), before);
      assert.deepEqual(spans.byName(SPAN.ddl), []);
      assert.equal(spans.byName(SPAN.plan).length, 1);

      const json = JSON.parse(JSON.stringify(plan)) as typeof plan;
      assert.deepEqual(json, plan, 'survives JSON unchanged');
      assert.deepEqual(plan.phases.map((p) => p.phase), ['expand', 'dual-write', 'backfill', 'verify', 'read-new', 'contract', 'rollback']);
      const steps = (phase: string) => plan.phases.find((p) => p.phase === phase)!.statements.map((s) => `${s.step}: ${s.lock}`);
      assert.deepEqual(steps('expand'), [
        'add-column: ACCESS EXCLUSIVE', 'create-index: SHARE UPDATE EXCLUSIVE', 'create-index: SHARE UPDATE EXCLUSIVE',
        'add-check: ACCESS EXCLUSIVE', 'add-check: SHARE UPDATE EXCLUSIVE',
      ]);
      assert.deepEqual(steps('dual-write'), ['sync-trigger: NONE', 'sync-trigger: ACCESS EXCLUSIVE']);
      assert.deepEqual(steps('backfill'), ['backfill-batch: ROW EXCLUSIVE']);
      assert.deepEqual(steps('verify'), ['verify: ACCESS SHARE']);
      assert.deepEqual(steps('read-new'), []);
      // The old column loses NOT NULL first even when it is dropped later: writers stop filling it at the phase
      // change, before the grace period ends and the column goes.
      assert.deepEqual(steps('contract'), [
        'drop-not-null: ACCESS EXCLUSIVE', 'set-not-null: ACCESS EXCLUSIVE', 'set-not-null: SHARE UPDATE EXCLUSIVE', 'set-not-null: ACCESS EXCLUSIVE',
        'sync-trigger: ACCESS EXCLUSIVE', 'sync-trigger: NONE', 'drop-old-column: ACCESS EXCLUSIVE',
      ]);
      assert.deepEqual(steps('rollback'), [
        'sync-trigger: ACCESS EXCLUSIVE', 'sync-trigger: NONE', 'create-index: SHARE UPDATE EXCLUSIVE', 'add-check: ACCESS EXCLUSIVE', 'drop-new-column: ACCESS EXCLUSIVE',
      ]);
      const expand = plan.phases[0]!;
      assert.equal(expand.statements[0]!.sql, `ALTER TABLE "${suite.schema}"."planned" ADD COLUMN IF NOT EXISTS "note_v2" character varying(40) DEFAULT 'n/a'::character varying(40)`);
      assert.equal(expand.statements[0]!.maxLockWaitMs, 2000);
      assert.equal(expand.statements[2]!.transactional, false);
      // SHARE UPDATE EXCLUSIVE statements wait up to nonBlockingLockTimeoutMs (default 60 s) per attempt.
      assert.equal(expand.statements[2]!.maxLockWaitMs, 60_000 * 4);
      assert.equal(expand.maxLockWaitMs, 2 * 2000 + 3 * 60_000 * 4);
      assert.equal(expand.maxBlockingLockWaitMs, 2 * 2000, 'only the ACCESS EXCLUSIVE statements wait ahead of application queries');
      assert.equal(plan.phases[2]!.maxBlockingLockWaitMs, 0, 'a backfill batch (ROW EXCLUSIVE) never does');
      assert.equal(expand.strongestLock, 'ACCESS EXCLUSIVE');
      assert.match(plan.phases[2]!.statements[0]!.sql, /^UPDATE .* SET "note_v2" = \(\(\nupper\(note\)\n\)::character varying\(40\)\)/s);
      assert.equal(plan.newColumn.type, 'character varying(40)');

      const keep = await planMigration(ctx, defineMigration({ id: 'planned', table: 'planned', oldColumn: 'note', backfill: 'upper(note)', newColumn: { name: 'note_v2', type: 'text' } }));
      assert.deepEqual(keep.phases.find((p) => p.phase === 'contract')!.statements.map((s) => s.sql.replace(/^ALTER TABLE \S+ /, '').split('\n')[0]),
        ['ALTER COLUMN "note" DROP NOT NULL', 'DROP TRIGGER IF EXISTS "zz_pf_sync_planned" ON "' + suite.schema + '"."planned"', `DROP FUNCTION IF EXISTS "${suite.stateSchema}"."pf_sync_planned"()`]);
    });
  });

  describe('contract and rollback steps', () => {
    it('drops NOT NULL on the old column only when it has it', async () => {
      await table('old_nn', 10);
      const r = await resolve({ id: 'old-nn', table: 'old_nn', oldColumn: 'amount', backfill: 'amount', newColumn: { name: 'amount_v2', type: 'numeric(12,2)' } });
      await dropNotNull.apply(ctx, r);
      assert.equal((await column('old_nn', 'amount'))!.notNull, false);
      spans.reset();
      await dropNotNull.apply(ctx, r);
      assert.deepEqual(ddlStatements(), []);
    });

    it('drops a column the sync trigger names only after removing the trigger, so writes keep working', async () => {
      await table('dropper', 10);
      const r = await resolve({ id: 'dropper', table: 'dropper', oldColumn: 'amount', backfill: 'round(amount * 100)', newColumn: { name: 'cents', type: 'bigint' } });
      await applySteps(ctx, r, expandSteps(r));
      await syncTrigger.apply(ctx, r);
      assert.equal(await syncTriggerInstalled(ctx, r), true);
      await dropNewColumn.apply(ctx, r);
      assert.equal(await column('dropper', 'cents'), undefined);
      assert.equal(await syncTriggerInstalled(ctx, r), false);
      await ctx.knex.raw("INSERT INTO dropper (id, amount, note) VALUES (1000, 1, 'after')");
      await dropNewColumn.apply(ctx, r); // nothing left to do
      await assert.rejects(dropOldColumn.rollback(ctx, r), (e: unknown) => isPhaseflagError(e, 'PF_IRREVERSIBLE'));
    });

    it('rolls expand back: index, check and the new column go, an index of the same name that is not ours stays', async () => {
      await table('rb', 50);
      const input: MigrationInput = { id: 'rb', table: 'rb', oldColumn: 'amount', backfill: 'round(amount * 100)', newColumn: { name: 'cents', type: 'bigint', index: true, check: 'cents >= 0' } };
      const before = await catalogSnapshot(ctx.knex, [suite.schema]);
      let r = await resolve(input);
      await applySteps(ctx, r, expandSteps(r));
      r = await resolve(input);
      await applySteps(ctx, r, rollbackSteps(r, { dropNewColumn: true }));
      const after = await catalogSnapshot(ctx.knex, [suite.schema]) as { dropped: unknown };
      assert.deepEqual({ ...after, dropped: null }, { ...(before as object), dropped: null });

      await ctx.knex.raw('CREATE INDEX pf_idx_rb ON rb (note)');
      await createIndex.rollback(ctx, r);
      assert.ok((await ctx.knex.raw("SELECT to_regclass('pf_idx_rb') AS r")).rows[0].r);
      await assert.rejects(createIndex.apply(ctx, r), (e: unknown) => isPhaseflagError(e, 'PF_MIGRATION_CONFLICT'));
      await addCheck.rollback(ctx, r); // no such check: nothing to do
    });
  });
});

