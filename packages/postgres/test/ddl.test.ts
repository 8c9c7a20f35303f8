import assert from 'node:assert/strict';
import { ATTR, LockTimeoutError, METRIC, SPAN, isPhaseflagError, type DdlSettings } from '@phaseflag/core';
import {
  captureMetrics,
  captureSpans,
  createSuiteSchema,
  waitFor,
  type MetricCapture,
  type SpanCapture,
  type Suite,
} from '@phaseflag/testkit';
import type { Knex } from 'knex';
import { createContext, type ExecutorContext } from '../src/context.js';
import { backoffMs, runDdl } from '../src/operations/ddl.js';
import { lockTimeoutFor, maxLockWait, type PlannedStatement } from '../src/operations/planned-statement.js';

/** Attempts at once, behind any holder: these tests exercise lock_timeout and the retries (ddl-hold-back.test.ts the look). */
const fast: DdlSettings = {
  lockTimeoutMs: 100,
  longTransactionMs: null,
  nonBlockingLockTimeoutMs: 100,
  statementTimeoutMs: 0,
  maxAttempts: 50,
  retryBaseMs: 20,
  retryMaxMs: 100,
};

/** A transaction that has read the table and stays open: it holds ACCESS SHARE, which ALTER TABLE must wait for. */
async function holdTable(knex: Knex, table: string): Promise<{ pid: number; release: () => Promise<void> }> {
  const trx = await knex.transaction();
  const pid = (await trx.raw('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
  await trx.raw(`SELECT count(*) FROM ?? /* long report */`, [table]);
  return {
    pid,
    release: async () => {
      await trx.commit();
    },
  };
}

describe('ddl: runDdl', function () {
  let suite: Suite;
  let ctx: ExecutorContext;
  let spans: SpanCapture;
  let metrics: MetricCapture;
  let other: Knex;

  const stmt = (sql: string, extra: Partial<PlannedStatement> = {}): PlannedStatement => ({
    step: 'test',
    sql,
    lock: 'ACCESS EXCLUSIVE',
    maxLockWaitMs: 0,
    maxDurationMs: 0,
    transactional: true,
    description: 'test statement',
    table: { schema: suite.schema, name: 't' },
    ...extra,
  });

  before(async () => {
    metrics = captureMetrics(); // before createContext: a meter taken earlier stays a no-op
    spans = captureSpans();
    // One connection: whatever a statement leaves on its session is seen by the next query.
    suite = await createSuiteSchema('ddl', { pool: { min: 1, max: 2 } });
    ctx = createContext({ knex: suite.knex, stateSchema: suite.stateSchema });
    other = suite.newKnex({ pool: { min: 0, max: 2 } });
    await suite.knex.raw(`
      CREATE TABLE t (id int PRIMARY KEY, v text);
      INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 100) g;
      CREATE TABLE seen (lock_timeout text, statement_timeout text, in_tx boolean)`);
  });
  after(async () => {
    await suite?.cleanup();
  });
  beforeEach(async () => {
    spans.reset();
    await metrics.reset();
    await suite.knex.raw('TRUNCATE seen');
  });

  const record =
    "INSERT INTO seen SELECT current_setting('lock_timeout'), current_setting('statement_timeout'), now() <> statement_timestamp()";

  it('runs a transactional statement under SET LOCAL lock_timeout and statement_timeout, then leaves the session as it was', async () => {
    const out = await runDdl(ctx, stmt(record, { lock: 'ROW EXCLUSIVE' }), {
      migrationId: 'm1',
      ddl: { ...fast, lockTimeoutMs: 250, statementTimeoutMs: 5000 },
    });
    assert.equal(out.attempts, 1);
    const seen = (await suite.knex.raw('SELECT * FROM seen')).rows;
    assert.deepEqual(seen, [{ lock_timeout: '250ms', statement_timeout: '5s', in_tx: true }]);
    const after = (
      await suite.knex.raw("SELECT current_setting('lock_timeout') AS l, current_setting('statement_timeout') AS s")
    ).rows[0];
    assert.deepEqual(after, { l: '0', s: '0' });
  });

  it('runs a non-transactional statement with session settings and resets them before the connection goes back to the pool', async () => {
    await runDdl(ctx, stmt(record, { transactional: false, lock: 'NONE' }), {
      migrationId: 'm1',
      ddl: { ...fast, lockTimeoutMs: 300 },
    });
    const seen = (await suite.knex.raw('SELECT * FROM seen')).rows;
    assert.deepEqual(seen, [{ lock_timeout: '300ms', statement_timeout: '0', in_tx: false }]);
    // Both pooled connections: neither keeps the DDL's timeouts.
    const settings = await Promise.all(
      [0, 1].map(() =>
        suite.knex.transaction(async (trx) => {
          const row = (await trx.raw("SELECT current_setting('lock_timeout') AS l, pg_sleep(0.05)")).rows[0];
          return row.l as string;
        }),
      ),
    );
    assert.deepEqual(settings, ['0', '0']);
  });

  it('records a phaseflag.ddl span with the statement, lock mode, attempts and lock wait, and a lock-wait measurement', async () => {
    await runDdl(ctx, stmt('ALTER TABLE t ADD COLUMN IF NOT EXISTS w int'), { migrationId: 'm-span', ddl: fast });
    const [span] = spans.byName(SPAN.ddl);
    assert.ok(span);
    assert.equal(span.attributes[ATTR.migrationId], 'm-span');
    assert.equal(span.attributes[ATTR.statement], 'ALTER TABLE t ADD COLUMN IF NOT EXISTS w int');
    assert.equal(span.attributes[ATTR.lockMode], 'ACCESS EXCLUSIVE');
    assert.equal(span.attributes[ATTR.attempts], 1);
    assert.equal(typeof span.attributes[ATTR.lockWaitMs], 'number');
    assert.equal(await metrics.histogramCount(METRIC.lockWait, { [ATTR.migrationId]: 'm-span' }), 1);
    assert.equal(await metrics.sum(METRIC.ddlRetries, { [ATTR.migrationId]: 'm-span' }), 0);
  });

  it('gives the lock up after lock_timeout and retries until a long transaction ends, then succeeds', async () => {
    const blocker = await holdTable(other, 't');
    // The long transaction ends once the DDL has given the lock up twice.
    const released = waitFor(
      async () => (await metrics.sum(METRIC.ddlRetries, { [ATTR.migrationId]: 'm-retry' })) >= 2,
      { description: 'two lock timeouts' },
    ).then(() => blocker.release());
    try {
      const out = await runDdl(ctx, stmt('ALTER TABLE t ADD COLUMN IF NOT EXISTS x int'), {
        migrationId: 'm-retry',
        ddl: fast,
      });
      await released;
      assert.ok(out.attempts > 1, `attempts ${out.attempts}`);
      assert.ok(out.lockWaitMs >= 100 * (out.attempts - 1), `lockWaitMs ${out.lockWaitMs}`);
      const [span] = spans.byName(SPAN.ddl);
      assert.equal(span!.attributes[ATTR.attempts], out.attempts);
      assert.equal(span!.events.filter((e) => e.name === 'lock_timeout').length, out.attempts - 1);
      assert.equal(await metrics.sum(METRIC.ddlRetries, { [ATTR.migrationId]: 'm-retry' }), out.attempts - 1);
      const col = (
        await suite.knex.raw(
          "SELECT count(*)::int AS n FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'x'",
        )
      ).rows[0].n;
      assert.equal(col, 1);
    } finally {
      released.catch(() => undefined); // settled by then, unless the DDL failed first
      await blocker.release().catch(() => undefined);
    }
  });

  it('fails with PF_LOCK_TIMEOUT after maxAttempts and names the blocking session and its query', async () => {
    const blocker = await holdTable(other, 't');
    try {
      await assert.rejects(
        runDdl(ctx, stmt('ALTER TABLE t ADD COLUMN y int'), {
          migrationId: 'm-timeout',
          ddl: { ...fast, maxAttempts: 3 },
        }),
        (e: unknown) => {
          assert.ok(e instanceof LockTimeoutError, String(e));
          assert.equal(e.code, 'PF_LOCK_TIMEOUT');
          assert.equal(e.attempts, 3);
          assert.match(e.message, new RegExp(`pid ${blocker.pid}`));
          assert.match(e.message, /long report/);
          assert.match(e.hint, /long-running transaction/);
          return true;
        },
      );
      const [span] = spans.byName(SPAN.ddl);
      assert.equal(span!.status.code, 2);
      assert.equal(span!.attributes[ATTR.attempts], 3);
    } finally {
      await blocker.release();
    }
    const col = (
      await suite.knex.raw(
        "SELECT count(*)::int AS n FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'y'",
      )
    ).rows[0].n;
    assert.equal(col, 0);
  });

  it("reports any other error as PF_DDL_FAILED with the statement and Postgres's message, without retrying", async () => {
    await assert.rejects(
      runDdl(ctx, stmt('ALTER TABLE t ADD COLUMN id int'), { migrationId: 'm-bad', ddl: fast }),
      (e: unknown) => {
        assert.ok(isPhaseflagError(e, 'PF_DDL_FAILED'));
        assert.match(e.message, /column "id" of relation "t" already exists/);
        assert.deepEqual(e.value, { statement: 'ALTER TABLE t ADD COLUMN id int', sqlstate: '42701' });
        return true;
      },
    );
    assert.equal(spans.byName(SPAN.ddl)[0]!.attributes[ATTR.attempts], 1);
  });

  it('ends a statement that outlives statement_timeout with PF_DDL_FAILED and says which setting to raise', async () => {
    await assert.rejects(
      runDdl(ctx, stmt('SELECT pg_sleep(2)', { lock: 'NONE' }), {
        migrationId: 'm-slow',
        ddl: { ...fast, statementTimeoutMs: 100 },
      }),
      (e: unknown) => isPhaseflagError(e, 'PF_DDL_FAILED') && /statementTimeoutMs/.test(e.hint),
    );
  });

  it('stops retrying when the signal aborts, reporting the lock timeouts it saw', async () => {
    const blocker = await holdTable(other, 't');
    const abort = new AbortController();
    const started = Date.now();
    try {
      const running = runDdl(ctx, stmt('ALTER TABLE t ADD COLUMN z int'), {
        migrationId: 'm-abort',
        ddl: { ...fast, maxAttempts: 1000 },
        signal: abort.signal,
      });
      // Aborted while it retries: after its first lock timeout.
      await waitFor(async () => (await metrics.sum(METRIC.ddlRetries, { [ATTR.migrationId]: 'm-abort' })) >= 1, {
        description: 'a lock timeout',
      });
      abort.abort();
      await assert.rejects(
        running,
        (e: unknown) => e instanceof LockTimeoutError && /aborted/.test(e.message) && e.attempts >= 1,
      );
      assert.ok(Date.now() - started < 1500, `took ${Date.now() - started} ms`);
    } finally {
      await blocker.release();
    }
  });

  it('cancels a running statement when the signal aborts', async () => {
    const abort = new AbortController();
    const started = Date.now();
    // Named after the suite: the database is shared, and the statement must be found running before the abort.
    const sql = `SELECT pg_sleep(10) /* ${suite.schema} */`;
    const running = runDdl(ctx, stmt(sql, { lock: 'NONE', transactional: false }), {
      migrationId: 'm-cancel',
      ddl: fast,
      signal: abort.signal,
    });
    await waitFor(
      async () =>
        (await other.raw("SELECT count(*)::int AS n FROM pg_stat_activity WHERE state = 'active' AND query = ?", [sql]))
          .rows[0].n > 0,
      { description: 'the statement running' },
    );
    abort.abort(new Error('operator pressed stop'));
    await assert.rejects(running, /operator pressed stop/);
    assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
  });

  it('backs off exponentially with jitter between half and all of each step, capped at retryMaxMs', () => {
    const ddl = { retryBaseMs: 100, retryMaxMs: 1000 };
    assert.equal(
      backoffMs(1, ddl, () => 0),
      50,
    );
    assert.equal(
      backoffMs(1, ddl, () => 1),
      100,
    );
    assert.equal(
      backoffMs(3, ddl, () => 1),
      400,
    );
    assert.equal(
      backoffMs(10, ddl, () => 1),
      1000,
    );
    assert.equal(
      backoffMs(10, ddl, () => 0),
      500,
    );
  });

  it('plans a SHARE UPDATE EXCLUSIVE statement with nonBlockingLockTimeoutMs and an ACCESS EXCLUSIVE one with lockTimeoutMs', async () => {
    const ddl = { lockTimeoutMs: 2000, nonBlockingLockTimeoutMs: 60_000, maxAttempts: 3 };
    assert.equal(lockTimeoutFor('ACCESS EXCLUSIVE', ddl), 2000);
    assert.equal(lockTimeoutFor('SHARE ROW EXCLUSIVE', ddl), 2000);
    assert.equal(lockTimeoutFor('SHARE', ddl), 2000, 'SHARE blocks writers while it waits');
    assert.equal(lockTimeoutFor('SHARE UPDATE EXCLUSIVE', ddl), 60_000);
    assert.equal(maxLockWait('SHARE UPDATE EXCLUSIVE', ddl), 180_000);
    assert.equal(maxLockWait('ACCESS EXCLUSIVE', ddl), 6000);
    assert.equal(maxLockWait('NONE', ddl), 0);
    assert.equal(
      lockTimeoutFor('SHARE UPDATE EXCLUSIVE', { ...ddl, lockTimeoutMs: 90_000 }),
      90_000,
      'never shorter than lockTimeoutMs',
    );
  });
});
