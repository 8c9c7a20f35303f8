import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { StaticFlagSource, type Logger } from '@phaseflag/core';
import { amountInput, createAmountTable, createSuiteSchema, waitFor, type Suite } from '@phaseflag/testkit';
import type { Knex } from 'knex';
import { Phaseflag } from '../src/index.js';
import { knobsChannel, notifyChannel } from '../src/internal.js';

/** The phase watcher's LISTEN connection, as the server sees it (the one backend that ran LISTEN on our channel). */
async function listenerPid(admin: Knex, stateSchema: string): Promise<number | null> {
  const rows = await admin.raw<{ rows: { pid: number }[] }>(
    `SELECT pid FROM pg_stat_activity WHERE query = ? AND pid <> pg_backend_pid()`,
    [`LISTEN "${notifyChannel(stateSchema)}"`],
  );
  return rows.rows[0]?.pid ?? null;
}

describe('phase watcher: a lost LISTEN connection', function () {
  this.timeout(120_000);
  let suite: Suite;

  before(async () => {
    suite = await createSuiteSchema('watcher');
    await createAmountTable(suite.knex, 'orders', 100);
  });
  after(async () => {
    await suite?.cleanup();
  });

  it('gives its pool slot back: after three terminated LISTEN backends a pool of 3 still serves queries, and closes', async () => {
    // The service's own pool, small as a user may set it; it acquires quickly so a leak shows as a timeout.
    const app = suite.newKnex({ pool: { min: 0, max: 3 } });
    const warnings: string[] = [];
    const logger: Logger = { debug() {}, info() {}, warn: (m) => warnings.push(m), error: (m) => warnings.push(m) };
    const pf = new Phaseflag({ knex: app, stateSchema: suite.stateSchema, pollIntervalMs: 100, logger });
    await pf.install();
    const h = pf.migration(amountInput('watcher-amount', 'orders'));
    const router = await h.router(new StaticFlagSource({}), { heartbeatMs: 0 });
    let pid = await waitFor(() => listenerPid(suite.knex, suite.stateSchema), { description: 'the LISTEN backend' });
    for (let i = 0; i < 3; i++) {
      await suite.knex.raw('SELECT pg_terminate_backend(?)', [pid]);
      const before = pid;
      pid = await waitFor(
        async () => {
          const now = await listenerPid(suite.knex, suite.stateSchema);
          return now !== null && now !== before ? now : null;
        },
        { timeoutMs: 20_000, description: `a new LISTEN backend after termination ${i + 1}` },
      );
    }
    // Every slot the dead connections held is free again: three queries at once are served.
    const served = await Promise.all([1, 2, 3].map((n) => app.raw('SELECT ?::int AS n', [n])));
    assert.deepEqual(
      served.map((r: { rows: { n: number }[] }) => r.rows[0]!.n),
      [1, 2, 3],
    );
    await router.close();
    await pf.close();
    const destroyed = await Promise.race([app.destroy().then(() => true), sleep(10_000).then(() => false)]);
    assert.ok(destroyed, 'knex.destroy() returns: no connection is left checked out');
  });

  it('says once that the state store is unreadable, not on every poll', async () => {
    const warnings: string[] = [];
    const logger: Logger = { debug() {}, info() {}, warn: (m) => warnings.push(m), error: (m) => warnings.push(m) };
    // A state schema never installed: every poll fails.
    const pf = new Phaseflag({
      knex: suite.knex,
      stateSchema: `${suite.stateSchema}_none`,
      pollIntervalMs: 20,
      logger,
    });
    const unwatch = pf.migration(amountInput('watcher-unread', 'orders')).watch(() => undefined);
    await sleep(500); // about 25 polls
    unwatch();
    await pf.close();
    assert.equal(warnings.filter((w) => w.includes('state store unreadable')).length, 1, warnings.join('\n'));
  });

  it('names its NOTIFY channels apart for any two state schemas, within 63 bytes', () => {
    assert.notEqual(notifyChannel('knobs_x'), knobsChannel('x'), 'a schema named like the knobs prefix');
    const long = 'a'.repeat(70);
    assert.notEqual(notifyChannel(`${long}1`), notifyChannel(`${long}2`), 'two names alike in their first 63 bytes');
    for (const schema of ['phaseflag', 'Sales Data', 'ünïcødé'.repeat(12), `${long}1`]) {
      for (const channel of [notifyChannel(schema), knobsChannel(schema)]) {
        assert.ok(Buffer.byteLength(channel, 'utf8') <= 63, channel);
      }
    }
  });
});
