import assert from 'node:assert/strict';
import { quoteIdent, SPAN } from '@phaseflag/core';
import { runBackfill } from '../src/operations/backfill/index.js';
import { RECLAIM_SPAN } from '../src/operations/backfill/reclaim.js';
import { syncTriggerName } from '../src/operations/steps/sync-trigger.js';
import {
  createUsers,
  registerMigration,
  resolveFor,
  setupBackfillSuite,
  usersMigration,
  wrongRows,
  type BackfillSuite,
} from './fixtures/backfill-suite.js';

/**
 * What the backfill does beyond writing rows, for speed and for the table it leaves behind: VACUUM while it runs
 * so later batches reuse the space earlier ones freed, and batches that skip the table's triggers when the only
 * one they would fire is the migration's own sync trigger (which does nothing for the backfill's writes).
 */
describe('backfill: space and triggers', function () {
  this.timeout(120_000);
  let s: BackfillSuite;
  let mayBypass = false;

  before(async () => {
    s = await setupBackfillSuite('backfill reclaim');
    try {
      await s.ctx.knex.transaction(async (trx) => {
        await trx.raw('SET LOCAL session_replication_role = replica');
      });
      mayBypass = true;
    } catch {
      mayBypass = false;
    }
  });
  after(async () => {
    await s?.suite.cleanup();
  });
  beforeEach(() => {
    s.spans.reset();
  });

  /** A trigger named like the migration's sync trigger that counts the writes it sees in `touches`. */
  async function countingTrigger(table: string, name: string, enable = ''): Promise<void> {
    await s.ctx.knex.raw(`CREATE OR REPLACE FUNCTION pf_touch_counter() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN NEW.touches := OLD.touches + 1; RETURN NEW; END $$`);
    await s.ctx.knex.raw('CREATE TRIGGER ?? BEFORE UPDATE ON ?? FOR EACH ROW EXECUTE FUNCTION pf_touch_counter()', [
      name,
      table,
    ]);
    if (enable) await s.ctx.knex.raw(`ALTER TABLE ?? ENABLE ${enable} TRIGGER ??`, [table, name]);
  }

  async function touched(table: string): Promise<number> {
    return (await s.ctx.knex.raw('SELECT count(*)::int AS n FROM ?? WHERE touches > 0', [table])).rows[0].n;
  }

  it('vacuums the table while it runs and once at the end, and not at all when told not to', async () => {
    const { ctx } = s;
    await createUsers(ctx.knex, 'users_reclaim', 30_000);
    const r = await resolveFor(ctx.knex, usersMigration('users-reclaim', 'users_reclaim'));
    await registerMigration(ctx, r);

    const result = await runBackfill(ctx, r, { batch: { size: 2000, targetBatchMs: 0 }, reclaim: { everyRows: 6000 } });

    assert.equal(result.completed, true);
    assert.equal(await wrongRows(ctx.knex, 'users_reclaim', 'email_lower', 'lower(email)'), 0);
    assert.ok(result.vacuums >= 2, `VACUUMs during the run and at its end: ${result.vacuums}`);
    const vacuums = s.spans.byName(RECLAIM_SPAN);
    assert.equal(vacuums.length, result.vacuums);
    assert.ok(vacuums.some((v) => v.attributes['phaseflag.vacuum.kind'] === 'interim'));
    // The last VACUUM began after the last batch had committed, so no dead tuple of the run is left for autovacuum.
    const batches = s.spans.byName(SPAN.backfillBatch);
    const ms = (t: [number, number]) => t[0] * 1e3 + t[1] / 1e6;
    const lastVacuum = ms(vacuums[vacuums.length - 1]!.startTime);
    const lastBatch = Math.max(...batches.map((b) => ms(b.endTime)));
    assert.ok(
      lastVacuum >= lastBatch - 1,
      `last VACUUM began ${lastVacuum - lastBatch} ms after the last batch ended (${vacuums.map((v) => v.attributes['phaseflag.vacuum.kind']).join(', ')})`,
    );
    const run = s.spans.byName(SPAN.backfill)[0]!;
    assert.ok(vacuums.every((v) => v.parentSpanContext?.spanId === run.spanContext().spanId));
    const stats = (
      await ctx.knex.raw(
        "SELECT vacuum_count::int AS n FROM pg_stat_user_tables WHERE relid = 'users_reclaim'::regclass",
      )
    ).rows[0];
    assert.ok(stats.n >= 2, `pg_stat_user_tables counts them: ${stats.n}`);

    await createUsers(ctx.knex, 'users_noreclaim', 30_000);
    const r2 = await resolveFor(ctx.knex, usersMigration('users-noreclaim', 'users_noreclaim'));
    await registerMigration(ctx, r2);
    s.spans.reset();
    const plain = await runBackfill(ctx, r2, { batch: { size: 2000, targetBatchMs: 0 }, reclaim: { enabled: false } });
    assert.equal(plain.completed, true);
    assert.equal(plain.vacuums, 0);
    assert.equal(s.spans.byName(RECLAIM_SPAN).length, 0);
  });

  it('skips its own sync trigger on the rows it writes, checking the table in every batch', async function () {
    if (!mayBypass) this.skip(); // the role cannot set session_replication_role: batches fire triggers as usual
    const { ctx } = s;
    await createUsers(ctx.knex, 'users_own', 20_000);
    const r = await resolveFor(ctx.knex, usersMigration('users-own', 'users_own'));
    await countingTrigger('users_own', syncTriggerName(r));
    await registerMigration(ctx, r);

    const result = await runBackfill(ctx, r, { batch: { size: 4000, targetBatchMs: 0 } });

    assert.equal(result.completed, true);
    assert.equal(await wrongRows(ctx.knex, 'users_own', 'email_lower', 'lower(email)'), 0);
    assert.equal(result.batchesWithoutTriggers, result.batches);
    assert.equal(await touched('users_own'), 0, "the migration's own trigger did not fire for the backfill");
    // The application's writes still fire it: the setting lasts for the batch's transaction only.
    await ctx.knex.raw('UPDATE users_own SET email = upper(email) WHERE id <= 10');
    assert.equal(await touched('users_own'), 10);
  });

  it('fires every trigger when the table has one of its own, one enabled for replicas, or when told to', async () => {
    const { ctx } = s;
    const cases: { table: string; setup: (trigger: string) => Promise<void>; skipOwnTrigger?: boolean }[] = [
      { table: 'users_audit', setup: () => countingTrigger('users_audit', 'audit_touch') },
      {
        table: 'users_replica',
        setup: async (own) => {
          await countingTrigger('users_replica', own);
          await ctx.knex.raw(
            'CREATE TRIGGER replica_only BEFORE UPDATE ON users_replica FOR EACH ROW EXECUTE FUNCTION pf_touch_counter()',
          );
          await ctx.knex.raw('ALTER TABLE users_replica ENABLE REPLICA TRIGGER replica_only');
        },
      },
      { table: 'users_optout', setup: (own) => countingTrigger('users_optout', own), skipOwnTrigger: false },
    ];
    for (const c of cases) {
      await createUsers(ctx.knex, c.table, 5000);
      const r = await resolveFor(ctx.knex, usersMigration(c.table.replace('_', '-'), c.table));
      await c.setup(syncTriggerName(r));
      await registerMigration(ctx, r);
      const result = await runBackfill(ctx, r, {
        batch: { size: 1000, targetBatchMs: 0 },
        ...(c.skipOwnTrigger === false ? { skipOwnTrigger: false } : {}),
      });
      assert.equal(result.completed, true, c.table);
      assert.equal(result.batchesWithoutTriggers, 0, c.table);
      assert.equal(await touched(c.table), 5000, `${c.table}: every row went through the triggers`);
    }
  });

  it('fires the triggers again from the next batch when one is created during the run', async function () {
    if (!mayBypass) this.skip();
    const { ctx } = s;
    await createUsers(ctx.knex, 'users_late', 10_000);
    const r = await resolveFor(ctx.knex, usersMigration('users-late', 'users_late'));
    await registerMigration(ctx, r);
    let batches = 0;
    // Before batch 4 the test starts creating the trigger; from batch 5 on, the run holds back (the throttle
    // query) until the trigger exists, so the trigger lands during the run however slow the machine is.
    const holdUntilTrigger = `SELECT (SELECT coalesce(sum(rows_done), 0) FROM ${quoteIdent(ctx.stateSchema)}.backfill_ranges
        WHERE migration_id = 'users-late') >= 4000
      AND NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = to_regclass('${r.schema}.users_late') AND tgname = 'late_audit')`;
    const result = await runBackfill(ctx, r, {
      batch: { size: 1000, targetBatchMs: 0 },
      throttle: { query: holdUntilTrigger, checkIntervalMs: 10 },
      shouldContinue: () => {
        batches++;
        if (batches === 4) void countingTrigger('users_late', 'late_audit');
        return true;
      },
      onProgress: () => undefined,
    });
    assert.equal(result.completed, true);
    assert.ok(
      result.batchesWithoutTriggers >= 3 && result.batchesWithoutTriggers < result.batches,
      `${result.batchesWithoutTriggers} of ${result.batches}`,
    );
    const touchedRows = await touched('users_late');
    assert.equal(
      touchedRows,
      1000 * (result.batches - result.batchesWithoutTriggers),
      'rows of the batches that fired triggers',
    );
  });
});
