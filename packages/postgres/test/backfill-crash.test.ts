import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { ATTR, SPAN } from '@phaseflag/core';
import { waitFor } from '@phaseflag/testkit';
import { runBackfill } from '../src/operations/backfill/index.js';
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

const CHILD = fileURLToPath(new URL('./fixtures/backfill-child.ts', import.meta.url));
const PACKAGE_DIR = fileURLToPath(new URL('..', import.meta.url));
const ROWS = 20_000;

describe('backfill after a crash', function () {
  this.timeout(120_000);
  let s: BackfillSuite;
  let child: ChildProcess | undefined;

  before(async () => {
    s = await setupBackfillSuite('backfill_crash');
  });
  after(async () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await s?.suite.cleanup();
  });

  it('resumes from the last committed checkpoint after SIGKILL: no row wrong, skipped or written twice', async () => {
    const { ctx, suite } = s;
    await createUsers(ctx.knex, 'users_crash', ROWS, { countTouches: true });
    // Hold each batch's UPDATE for 40 ms after its rows are changed, so the kill lands while a batch has written
    // rows it has not committed.
    await ctx.knex.raw(
      `CREATE FUNCTION pf_slow_batch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.04); RETURN NULL; END $$`,
    );
    await ctx.knex.raw(
      'CREATE TRIGGER pf_slow_batch AFTER UPDATE ON users_crash FOR EACH STATEMENT EXECUTE FUNCTION pf_slow_batch()',
    );
    const r = await resolveFor(ctx.knex, usersMigration('users-crash', 'users_crash'));
    await registerMigration(ctx, r);

    child = spawn(process.execPath, ['--import', 'tsx', CHILD], {
      cwd: PACKAGE_DIR,
      env: {
        ...process.env,
        PF_CONNECTION: suite.connectionString,
        PF_STATE_SCHEMA: ctx.stateSchema,
        PF_TABLE: 'users_crash',
        PF_MIGRATION_ID: 'users-crash',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => {
      stdout += String(d);
    });
    child.stderr!.on('data', (d) => {
      stderr += String(d);
    });
    const exited = once(child, 'exit');

    await waitFor(() => (stdout.match(/^batch /gm)?.length ?? 0) >= 5 || child!.exitCode !== null, {
      timeoutMs: 60_000,
      description: 'five batches in the child',
    });
    assert.equal(child.exitCode, null, `child ended early: ${stdout}\n${stderr}`);
    // Strike while a batch's UPDATE is running: its rows are changed but not committed.
    await waitFor(
      async () =>
        (
          await ctx.knex.raw(
            `SELECT 1 FROM pg_stat_activity WHERE application_name = 'pf-backfill-child' AND state = 'active' AND query LIKE '%UPDATE "%users_crash"%'`,
          )
        ).rows.length > 0,
      { intervalMs: 2, description: 'a batch in flight' },
    );
    child.kill('SIGKILL');
    const [, signal] = await exited;
    assert.equal(signal, 'SIGKILL');
    assert.doesNotMatch(stdout, /finished/);
    // The server rolls the open transaction back and drops the session lock once it notices the dead socket.
    await waitFor(
      async () =>
        (await ctx.knex.raw(`SELECT 1 FROM pg_stat_activity WHERE application_name = 'pf-backfill-child'`)).rows
          .length === 0,
      { description: 'the child backends to go away' },
    );

    const atCrash = await rangeTotals(ctx, 'users-crash');
    const reported = Number(
      stdout
        .trim()
        .split('\n')
        .filter((l) => l.startsWith('batch '))
        .pop()!
        .split(' ')[1],
    );
    assert.ok(atCrash.batches >= 5 && atCrash.rowsDone < ROWS, JSON.stringify(atCrash));
    assert.equal(atCrash.rowsDone, atCrash.batches * 500, 'the checkpoint counts committed batches only');
    assert.ok(reported <= atCrash.rowsDone, 'every batch the child reported was committed');
    const checkpoint = (
      await ctx.knex.raw('SELECT checkpoint::text AS c FROM ??.backfill_ranges WHERE migration_id = ?', [
        ctx.stateSchema,
        'users-crash',
      ])
    ).rows[0].c;
    assert.equal(checkpoint, `[${atCrash.rowsDone}]`);
    // The batch that was running left nothing behind: exactly the committed rows are filled.
    const filled = (
      await ctx.knex.raw(
        'SELECT count(*)::int AS n, coalesce(max(id), 0)::int AS last FROM users_crash WHERE email_lower IS NOT NULL',
      )
    ).rows[0];
    assert.deepEqual(filled, { n: atCrash.rowsDone, last: atCrash.rowsDone });

    s.spans.reset();
    const resumed = await runBackfill(ctx, r, { batch: { size: 500, targetBatchMs: 0 } });

    assert.equal(resumed.completed, true);
    const firstBatch = s.spans.byName(SPAN.backfillBatch)[0]!;
    assert.equal(firstBatch.attributes[ATTR.keyFrom], checkpoint, 'the resumed run starts right after the checkpoint');
    assert.equal(resumed.rowsScanned, ROWS - atCrash.rowsDone, 'no committed batch is done again');
    assert.equal(resumed.rowsUpdated, ROWS - atCrash.rowsDone);
    const end = await rangeTotals(ctx, 'users-crash');
    assert.equal(end.rowsDone, ROWS, 'rows_done continued from the crash');
    assert.equal(end.batches, atCrash.batches + resumed.batches);
    assert.equal(await wrongRows(ctx.knex, 'users_crash', 'email_lower', 'lower(email)'), 0);
    assert.deepEqual(
      (await ctx.knex.raw('SELECT touches, count(*)::int AS n FROM users_crash GROUP BY touches')).rows,
      [{ touches: 1, n: ROWS }],
    );
  });
});
