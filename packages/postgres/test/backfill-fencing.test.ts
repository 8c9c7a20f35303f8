import assert from 'node:assert/strict';
import { isPhaseflagError } from '@phaseflag/core';
import { waitFor } from '@phaseflag/testkit';
import { createContext } from '../src/context.js';
import { runBackfill } from '../src/operations/backfill/index.js';
import { installStateStore } from '../src/store/installer.js';
import { backfillLockKey, findBackfillRunner } from '../src/operations/backfill/holder.js';
import {
  createUsers,
  rangeTotals,
  registerMigration,
  resolveFor,
  setupBackfillSuite,
  usersMigration,
  wrongRows,
  type BackfillSuite,
} from './fixtures/backfill-suite.js';

const ROWS = 30_000;

describe('backfill runner fencing', function () {
  this.timeout(120_000);
  let s: BackfillSuite;

  before(async () => {
    s = await setupBackfillSuite('backfill_fence');
  });
  after(async () => {
    await s?.suite.cleanup();
  });

  it('a runner whose lock backend is terminated stops; the runner that takes over finishes, each row counted once', async () => {
    const { ctx } = s;
    await createUsers(ctx.knex, 'users_fence', ROWS, { countTouches: true });
    // 30 ms per batch, so the kill lands mid-run with batches in flight.
    await ctx.knex.raw(
      `CREATE FUNCTION pf_slow_fence() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.03); RETURN NULL; END $$`,
    );
    await ctx.knex.raw(
      'CREATE TRIGGER pf_slow_fence AFTER UPDATE ON users_fence FOR EACH STATEMENT EXECUTE FUNCTION pf_slow_fence()',
    );
    const r = await resolveFor(ctx.knex, usersMigration('users-fence', 'users_fence'));
    await registerMigration(ctx, r);
    const batch = { size: 500, workers: 2 };

    const a = runBackfill(ctx, r, { batch }).then(
      (result) => ({ ok: true as const, result }),
      (error: unknown) => ({ ok: false as const, error }),
    );
    await waitFor(async () => (await rangeTotals(ctx, 'users-fence')).batches >= 4, {
      timeoutMs: 20_000,
      description: 'runner A to commit a few batches',
    });
    const other = s.otherContext();
    try {
      const holder = await findBackfillRunner(other.knex, ctx.stateSchema, 'users-fence');
      assert.ok(holder, 'runner A holds the lock');
      await other.knex.raw('SELECT pg_terminate_backend(?)', [holder.pid]);
      await waitFor(async () => (await findBackfillRunner(other.knex, ctx.stateSchema, 'users-fence')) === null, {
        timeoutMs: 5_000,
        description: 'the lock to go with its backend',
      });
      const b = await runBackfill(other, await resolveFor(other.knex, r.migration), { batch }).then(
        (result) => ({ ok: true as const, result }),
        (error: unknown) => ({ ok: false as const, error }),
      );
      const ended = await a;
      assert.ok(b.ok, `runner B finishes: ${b.ok ? '' : String((b as { error: unknown }).error)}`);
      assert.equal(b.result.completed, true);
      assert.ok(!ended.ok, 'runner A does not finish');
      assert.ok(
        isPhaseflagError(ended.error, 'PF_BACKFILL_LOCK_LOST'),
        `runner A stops with PF_BACKFILL_LOCK_LOST, not ${String(ended.error)}`,
      );
      const row = (
        await ctx.knex.raw('SELECT rows_backfilled::bigint AS n FROM ??.migrations WHERE id = ?', [
          ctx.stateSchema,
          'users-fence',
        ])
      ).rows[0];
      assert.equal(Number(row.n), ROWS, 'rows_backfilled counts each row once');
      assert.equal((await rangeTotals(ctx, 'users-fence')).rowsDone, ROWS);
      assert.equal(await wrongRows(ctx.knex, 'users_fence', 'email_lower', 'lower(email)'), 0);
      const touched = (await ctx.knex.raw('SELECT max(touches)::int AS m FROM users_fence')).rows[0].m;
      assert.equal(touched, 1, 'no row written twice');
    } finally {
      await other.knex.destroy();
    }
  });

  it('the runner lock is per state schema: two stores sharing a database and a migration id run side by side', async () => {
    const { ctx } = s;
    const otherSchema = `${ctx.stateSchema}_b`.slice(0, 63);
    const other = createContext({ knex: ctx.knex, stateSchema: otherSchema, actor: 'test' });
    await installStateStore(other);
    try {
      assert.notEqual(backfillLockKey(ctx.stateSchema, 'same-id'), backfillLockKey(otherSchema, 'same-id'));
      await createUsers(ctx.knex, 'users_same_a', 4000);
      await createUsers(ctx.knex, 'users_same_b', 4000);
      for (const t of ['users_same_a', 'users_same_b'])
        await ctx.knex.raw(
          `CREATE TRIGGER pf_slow_fence AFTER UPDATE ON ?? FOR EACH STATEMENT EXECUTE FUNCTION pf_slow_fence()`,
          [t],
        );
      const a = await resolveFor(ctx.knex, usersMigration('same-id', 'users_same_a'));
      const b = await resolveFor(ctx.knex, usersMigration('same-id', 'users_same_b'));
      await registerMigration(ctx, a);
      await registerMigration(other, b);
      const batch = { size: 500, workers: 1 };
      const [ra, rb] = await Promise.all([runBackfill(ctx, a, { batch }), runBackfill(other, b, { batch })]);
      assert.equal(ra.completed, true);
      assert.equal(rb.completed, true);
      assert.equal(await wrongRows(ctx.knex, 'users_same_b', 'email_lower', 'lower(email)'), 0);
    } finally {
      await ctx.knex.raw('DROP SCHEMA IF EXISTS ?? CASCADE', [otherSchema]);
    }
  });
});
