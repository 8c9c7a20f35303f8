import assert from 'node:assert/strict';
import { isPhaseflagError, systemClock, type Logger } from '@phaseflag/core';
import { privateServerUnavailable, startPrivateServer, waitFor, type PrivateServer } from '@phaseflag/testkit';
import knexFactory, { type Knex } from 'knex';
import { createContext, type ExecutorContext } from '../src/context.js';
import { runBackfill } from '../src/operations/backfill/index.js';
import { installStateStore } from '../src/store/installer.js';
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

const ROWS = 20_000;
const BATCH = { size: 500, workers: 2 };

/** A users table whose every UPDATE statement takes 30 ms more, so a fault lands while batches run. */
async function slowUsers(ctx: ExecutorContext, table: string, id: string) {
  await createUsers(ctx.knex, table, ROWS);
  await ctx.knex.raw(
    `CREATE OR REPLACE FUNCTION pf_slow_loss() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.03); RETURN NULL; END $$`,
  );
  await ctx.knex.raw(
    `CREATE TRIGGER pf_slow_loss AFTER UPDATE ON ?? FOR EACH STATEMENT EXECUTE FUNCTION pf_slow_loss()`,
    [table],
  );
  const r = await resolveFor(ctx.knex, usersMigration(id, table));
  await registerMigration(ctx, r);
  return r;
}

async function rowsBackfilled(ctx: ExecutorContext, id: string): Promise<number> {
  const row = (
    await ctx.knex.raw('SELECT rows_backfilled::bigint AS n FROM ??.migrations WHERE id = ?', [ctx.stateSchema, id])
  ).rows[0];
  return Number(row.n);
}

/** Terminates one backend running a batch over `table` (a worker's, not the runner lock's). */
async function killWorker(knex: Knex, table: string): Promise<void> {
  await waitFor(
    async () =>
      (
        await knex.raw(
          `SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity
            WHERE state = 'active' AND query LIKE ? AND pid <> pg_backend_pid() LIMIT 1`,
          [`%${table}%`],
        )
      ).rows[0]?.killed === true,
    { timeoutMs: 10_000, description: 'a batch to terminate' },
  );
}

describe('backfill after a lost connection', function () {
  this.timeout(180_000);
  let s: BackfillSuite;

  before(async () => {
    s = await setupBackfillSuite('backfill_loss');
  });
  after(async () => {
    await s?.suite.cleanup();
  });

  it('a terminated worker backend: the runner reconnects and resumes from the checkpoint; each row counted once', async () => {
    const { ctx } = s;
    const r = await slowUsers(ctx, 'users_loss', 'users-loss');
    const run = runBackfill(ctx, r, { batch: BATCH });
    await waitFor(async () => (await rangeTotals(ctx, 'users-loss')).batches >= 3, {
      timeoutMs: 20_000,
      description: 'a few batches',
    });
    await killWorker(s.suite.knex, 'users_loss');
    const result = await run;
    assert.equal(result.completed, true);
    assert.ok(
      s.logs.some((l) => l.level === 'warn' && /connection lost/.test(l.message)),
      'the loss is logged',
    );
    assert.equal(await rowsBackfilled(ctx, 'users-loss'), ROWS);
    assert.equal(await wrongRows(ctx.knex, 'users_loss', 'email_lower', 'lower(email)'), 0);
  });

  it('with reconnectMs 0 it fails at once with PF_CONNECTION_LOST, a typed error', async () => {
    const { ctx } = s;
    const r = await slowUsers(ctx, 'users_loss0', 'users-loss0');
    const run = runBackfill(ctx, r, { batch: BATCH, reconnectMs: 0 }).then(
      () => null,
      (error: unknown) => error,
    );
    await waitFor(async () => (await rangeTotals(ctx, 'users-loss0')).batches >= 3, {
      timeoutMs: 20_000,
      description: 'a few batches',
    });
    await killWorker(s.suite.knex, 'users_loss0');
    const error = await run;
    assert.ok(isPhaseflagError(error, 'PF_CONNECTION_LOST'), `PF_CONNECTION_LOST, not ${String(error)}`);
    const done = await rowsBackfilled(ctx, 'users-loss0');
    assert.equal(done, (await rangeTotals(ctx, 'users-loss0')).rowsDone, 'the counters agree with the checkpoints');
    assert.ok(done < ROWS);
  });

  const unavailable = privateServerUnavailable();
  for (const mode of ['fast', 'immediate'] as const) {
    it(`a server restart (pg_ctl restart -m ${mode}) on a private server: the backfill finishes`, async function () {
      if (unavailable) this.skip();
      let server: PrivateServer | undefined;
      let knex: Knex | undefined;
      try {
        server = await startPrivateServer();
        knex = knexFactory({ client: 'pg', connection: server.url, pool: { min: 0, max: 6 } });
        const logs: string[] = [];
        const log = (message: string) => logs.push(message);
        const logger: Logger = { debug: () => undefined, info: () => undefined, warn: log, error: log };
        const ctx = createContext({ knex, stateSchema: 'pf_state', logger, actor: 'test', clock: systemClock });
        await installStateStore(ctx);
        const r = await slowUsers(ctx, 'users_restart', 'users-restart');
        const run = runBackfill(ctx, r, { batch: BATCH });
        await waitFor(async () => (await rangeTotals(ctx, 'users-restart')).batches >= 3, {
          timeoutMs: 20_000,
          description: 'a few batches',
        });
        await server.restart(mode);
        const result = await run;
        assert.equal(result.completed, true);
        assert.ok(
          logs.some((m) => /connection lost/.test(m)),
          'the loss is logged',
        );
        assert.equal(await rowsBackfilled(ctx, 'users-restart'), ROWS);
        assert.equal(await wrongRows(knex, 'users_restart', 'email_lower', 'lower(email)'), 0);
      } finally {
        await knex?.destroy();
        await server?.stop();
      }
    });
  }
});
