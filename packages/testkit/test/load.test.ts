import assert from 'node:assert/strict';
import { createSuiteSchema, holdsFor, startLoad, waitFor, type Suite } from '../src/index.js';

/**
 * Tracks timers created while installed. Counting `process.getActiveResourcesInfo()` is not precise enough here:
 * knex pools and mocha start and stop their own timers during a test.
 */
function trackTimers() {
  const live = new Set<unknown>();
  const realSet = globalThis.setTimeout;
  const realClear = globalThis.clearTimeout;
  globalThis.setTimeout = ((callback: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    const timer = realSet(() => {
      live.delete(timer);
      callback(...args);
    }, ms);
    live.add(timer);
    return timer;
  }) as typeof setTimeout;
  globalThis.clearTimeout = ((timer: NodeJS.Timeout) => {
    live.delete(timer);
    realClear(timer);
  }) as typeof clearTimeout;
  return {
    live,
    restore: () => {
      globalThis.setTimeout = realSet;
      globalThis.clearTimeout = realClear;
    },
  };
}

describe('startLoad', function () {
  let suite: Suite;
  before(async function () {
    suite = await createSuiteSchema('load');
    await suite.knex.raw('CREATE TABLE accounts (id bigint PRIMARY KEY, balance int NOT NULL)');
  });
  after(async function () {
    await suite?.cleanup();
  });

  it('counts failed statements per op and keeps samples of them', async function () {
    const load = startLoad({
      knex: suite.knex,
      concurrency: 3,
      ops: [
        {
          name: 'insert',
          weight: 3,
          run: (i, db) => db.raw('INSERT INTO accounts VALUES (?, 0)', [i]).then(() => undefined),
        },
        { name: 'read', weight: 1, run: (_i, db) => db.raw('SELECT count(*) FROM accounts').then(() => undefined) },
        {
          name: 'broken',
          weight: 1,
          run: (_i, db) => db.raw('SELECT missing_column FROM accounts').then(() => undefined),
        },
      ],
    });
    // Every op has run (and the broken one failed) while the load keeps going.
    await waitFor(() => Object.values(load.snapshot().byOp).every((op) => op.ops > 0), {
      description: 'each op to run',
    });
    const during = load.snapshot();
    assert.ok(during.ops > 0, 'snapshot sees progress while running');
    const report = await load.stop();

    assert.ok(report.ops >= during.ops);
    assert.equal(report.errors, report.byOp.broken!.ops, 'every broken op failed');
    assert.ok(report.errors > 0);
    assert.equal(report.byOp.insert!.errors, 0);
    assert.equal(report.byOp.read!.errors, 0);
    assert.equal(report.ops, report.byOp.insert!.ops + report.byOp.read!.ops + report.byOp.broken!.ops);
    assert.ok(report.errorSamples.length > 0 && report.errorSamples.length <= 20);
    assert.deepEqual(
      { op: report.errorSamples[0]!.op, code: report.errorSamples[0]!.code },
      { op: 'broken', code: '42703' },
    );
    assert.match(report.errorSamples[0]!.message, /missing_column/);
    const inserted = Number((await suite.knex.raw('SELECT count(*) AS n FROM accounts')).rows[0].n);
    assert.equal(inserted, report.byOp.insert!.ops, 'stop() waited for in-flight inserts');
    const { p50Ms, p99Ms, maxMs } = report.byOp.read!;
    assert.ok(p50Ms > 0 && p50Ms <= p99Ms && p99Ms <= maxMs, JSON.stringify(report.byOp.read));
  });

  it('does no work and leaves no timers behind after stop, even with pauses', async function () {
    let calls = 0;
    const timers = trackTimers();
    let report;
    try {
      const load = startLoad({
        knex: suite.knex,
        concurrency: 2,
        pauseMs: 1000,
        ops: [{ name: 'noop', run: async () => void calls++ }],
      });
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(timers.live.size, 2, 'each worker is pausing');
      report = await load.stop();
      assert.equal(await load.stop(), report, 'stop is idempotent');
      assert.equal(timers.live.size, 0, 'stop cleared the pauses');
    } finally {
      timers.restore();
    }
    assert.equal(report.ops, 2, 'each worker ran once, then stop cut its pause short');
    await holdsFor(() => calls === 2, 20, { intervalMs: 5, description: 'no op after stop' });
    assert.equal(calls, 2, 'no op ran after stop');
  });

  it('rejects options that would make the numbers meaningless', function () {
    assert.throws(() => startLoad({ knex: suite.knex, ops: [] }), /PF_TESTKIT_INVALID_LOAD_OPTIONS|ops must be/);
    assert.throws(
      () => startLoad({ knex: suite.knex, ops: [{ name: 'a', weight: 0, run: async () => {} }] }),
      /positive weight/,
    );
  });
});
