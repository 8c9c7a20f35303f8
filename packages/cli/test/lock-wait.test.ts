import assert from 'node:assert/strict';
import { createSuiteSchema, waitFor, type Suite } from '@phaseflag/testkit';
import { EXIT } from '../src/exit-codes.js';
import { createOrders, workdir, type Workdir } from './support.js';

/** `phaseflag expand` behind an open transaction: the wait and its blocker are printed as they happen. */
describe('phaseflag CLI: a DDL step waiting for its lock says who blocks it', function () {
  this.timeout(120_000);
  let suite: Suite;
  let w: Workdir;

  before(async () => {
    suite = await createSuiteSchema('cli lock wait');
    w = workdir(suite);
    w.writeConfig(`import { defineConfig } from '@phaseflag/cli';

export default defineConfig({
  migrations: [{
    id: 'orders-wait',
    table: '${suite.schema}.orders',
    oldColumn: 'amount_cents',
    newColumn: { name: 'amount', type: 'numeric(12,2)' },
    backfill: 'amount_cents::numeric / 100',
    ddl: { lockTimeoutMs: 500, maxAttempts: 40, retryBaseMs: 100, retryMaxMs: 200 },
  }],
});
`);
  });
  after(async () => {
    w?.remove();
    await suite?.cleanup();
  });

  it('prints the blocking pid within seconds, then finishes once the blocker ends', async () => {
    await createOrders(suite, 10);
    const blockerKnex = suite.newKnex({ pool: { min: 0, max: 1 }, applicationName: 'pf-cli-blocker' });
    const trx = await blockerKnex.transaction();
    await trx.raw('SELECT count(*) FROM orders');
    const pid = (await trx.raw('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
    const started = Date.now();
    const run = w.start(['expand', 'orders-wait']);
    try {
      await waitFor(() => new RegExp(`blocked by pid ${pid}\\b`).test(run.output.stderr), {
        timeoutMs: 20_000,
        description: `the CLI to name pid ${pid}`,
      });
      const seenAfter = Date.now() - started;
      // The blocker is seconds old when the CLI looks: expand holds back from the lock instead of queueing for it.
      assert.match(
        run.output.stderr,
        /add-column holds back, without queueing, from ACCESS EXCLUSIVE on .*orders \(attempt \d+\/40, [\d.]+s;/,
      );
      assert.match(run.output.stderr, /pf-cli-blocker, idle in transaction, since /);
      assert.ok(seenAfter < 15_000, `printed after ${seenAfter} ms (the CLI starts in a few seconds)`);
    } finally {
      await trx.rollback();
      await blockerKnex.destroy();
    }
    const r = await run.done;
    assert.equal(r.code, EXIT.ok, r.stderr);
    assert.match(r.stdout, /→ expanded/);
  });
});
