import assert from 'node:assert/strict';
import { isPhaseflagError } from '@phaseflag/core';
import { waitFor } from '@phaseflag/testkit';
import { runBackfill } from '../src/operations/backfill/index.js';
import { findBackfillRunner } from '../src/operations/backfill/holder.js';
import { resolveMigration } from '../src/catalog/resolve.js';
import {
  createUsers,
  rangeTotals,
  registerMigration,
  resolveFor,
  setupBackfillSuite,
  usersMigration,
  type BackfillSuite,
} from './fixtures/backfill-suite.js';

/** The throttle query is one read-only SELECT, judged before anything runs and run where it can harm nothing. */
describe('backfill: the throttle query', function () {
  let s: BackfillSuite;

  before(async () => {
    s = await setupBackfillSuite('throttle_query');
    await createUsers(s.ctx.knex, 'users_t', 2000);
    await s.ctx.knex.raw('CREATE TABLE keep_me (id int)');
  });
  after(async () => {
    await s?.suite.cleanup();
  });

  const tableExists = async (name: string) =>
    (await s.ctx.knex.raw('SELECT to_regclass(?) IS NOT NULL AS ok', [name])).rows[0].ok as boolean;
  const invalid = (fragment: RegExp) => (e: unknown) => {
    assert.ok(isPhaseflagError(e, 'PF_INVALID_OPTIONS'), String(e));
    assert.match(e.message, fragment);
    assert.equal(e.value !== undefined, true);
    assert.ok(e.hint.length > 0);
    return true;
  };

  const refused: [string, string, RegExp][] = [
    ['a second statement after the SELECT', 'SELECT false; DROP TABLE keep_me', /one statement/],
    ['a statement that is not a SELECT', 'DROP TABLE keep_me', /not one SELECT/],
    ['a data-modifying statement', 'DELETE FROM keep_me RETURNING true', /not one SELECT/],
    ['a SELECT of something other than one boolean', 'SELECT 1 AS a, 2 AS b', /not one boolean column/],
  ];
  for (const [what, query, message] of refused) {
    it(`refuses ${what} at plan time and before a backfill runs, and never executes it`, async () => {
      const m = usersMigration(`t-${refused.findIndex((x) => x[1] === query)}`, 'users_t', {
        throttle: { query, checkIntervalMs: 50 },
      });
      await assert.rejects(resolveMigration(s.ctx.knex, m), invalid(message));
      const r = await resolveFor(s.ctx.knex, usersMigration(m.id, 'users_t'));
      await registerMigration(s.ctx, r);
      await assert.rejects(runBackfill(s.ctx, r, { throttle: { query } }), invalid(message));
      assert.equal(await tableExists('keep_me'), true);
      assert.equal((await rangeTotals(s.ctx, m.id)).batches, 0, 'no batch ran');
    });
  }

  it("runs on a connection of its own: pg_advisory_unlock_all() there cannot free the runner's lock", async () => {
    await s.ctx.knex.raw('CREATE TABLE hold_switch (hold boolean NOT NULL); INSERT INTO hold_switch VALUES (true)');
    const query = 'SELECT s.hold FROM hold_switch s, (SELECT pg_advisory_unlock_all()) AS u';
    const r = await resolveFor(
      s.ctx.knex,
      usersMigration('t-unlock', 'users_t', { throttle: { query, checkIntervalMs: 30 } }),
    );
    await registerMigration(s.ctx, r);
    const running = runBackfill(s.ctx, r, { batch: { size: 500, targetBatchMs: 0 } });
    await waitFor(
      () => s.logs.some((l) => /backfill throttled/.test(l.message) && l.fields?.migrationId === 't-unlock'),
      { timeoutMs: 10_000, description: 'the runner to hold back' },
    );
    // Several throttle checks, each calling pg_advisory_unlock_all(): the runner sleeps 30 ms after each.
    const checks = () => s.clock.sleeps.filter((ms) => ms === 30).length;
    const seen = checks();
    await waitFor(() => checks() >= seen + 3, { description: 'three more throttle checks' });
    assert.notEqual(
      await findBackfillRunner(s.ctx.knex, s.ctx.stateSchema, 't-unlock'),
      null,
      'the runner still holds its lock',
    );
    await s.ctx.knex.raw('UPDATE hold_switch SET hold = false');
    const result = await running;
    assert.equal(result.completed, true);
    // Held for at least the three checks waited for above, 30 ms apart.
    assert.ok(result.throttledMs >= 90, `throttled ${result.throttledMs} ms`);
    assert.equal((await rangeTotals(s.ctx, 't-unlock')).rowsDone, 2000);
  });

  it('runs read-only: a SELECT that calls a writing function fails instead of writing', async () => {
    await s.ctx.knex.raw(
      `CREATE FUNCTION sneaky() RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN DELETE FROM keep_me; INSERT INTO keep_me VALUES (1); RETURN false; END $$`,
    );
    const r = await resolveFor(
      s.ctx.knex,
      usersMigration('t-sneaky', 'users_t', { throttle: { query: 'SELECT sneaky();', checkIntervalMs: 30 } }),
    );
    await registerMigration(s.ctx, r);
    await assert.rejects(runBackfill(s.ctx, r), invalid(/read-only transaction/));
    assert.equal((await s.ctx.knex.raw('SELECT count(*)::int AS n FROM keep_me')).rows[0].n, 0);
  });
});
