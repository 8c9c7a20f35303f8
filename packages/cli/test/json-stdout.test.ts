import assert from 'node:assert/strict';
import { createSuiteSchema, startUnleash, waitFor, type Suite, type UnleashServer } from '@phaseflag/testkit';
import { EXIT } from '../src/exit-codes.js';
import { createOrders, ordersConfig, workdir, type Workdir } from './support.js';

/** With --json, stdout is the one JSON document, whatever the libraries underneath log (knex after a blip). */
describe('phaseflag CLI: --json stdout after a connection blip', function () {
  this.timeout(180_000);
  let suite: Suite;
  let unleash: UnleashServer;
  let w: Workdir;

  before(async () => {
    suite = await createSuiteSchema('cli json stdout');
    unleash = await startUnleash();
    w = workdir(suite, {
      UNLEASH_URL: unleash.url,
      UNLEASH_API_TOKEN: unleash.clientToken,
      UNLEASH_ADMIN_TOKEN: unleash.adminToken,
    });
    w.writeConfig(ordersConfig(suite.schema));
    await createOrders(suite, 100);
  });
  after(async () => {
    w?.remove();
    await unleash?.stop();
    await suite?.cleanup();
  });

  it("keeps knex's Connection Error warnings off stdout when the CLI's idle backends are terminated", async () => {
    const provision = await w.run(['provision', 'orders-amount']);
    assert.equal(provision.code, EXIT.ok, provision.stderr);
    const run = w.start(['run', 'orders-amount', '--watch', '--interval', '200', '--json', '--verbose']);
    await waitFor(async () => /phase pending/.test(run.output.stderr), { timeoutMs: 60_000, description: 'run' }).catch(
      (e: unknown) => {
        throw new Error(`${String(e)}\n${run.output.stderr}\n${run.output.stdout}`);
      },
    );
    // Idle pooled connections die under the pool: knex says "Connection Error" when it next validates them.
    let terminated = 0;
    for (let i = 0; i < 5; i++) {
      const r = await suite.knex.raw(
        `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
          WHERE application_name = 'phaseflag-cli' AND state = 'idle' AND pid <> pg_backend_pid()`,
      );
      terminated += (r.rows[0] as { n: number }).n;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    assert.ok(terminated > 0, 'no idle backend of the CLI to terminate');
    await waitFor(async () => /Connection Error/.test(run.output.stderr), {
      timeoutMs: 20_000,
      description: "knex's warning (on stderr with --verbose)",
    });
    run.child.kill('SIGINT');
    const done = await run.done;
    assert.equal(done.code, EXIT.interrupted, done.stderr);
    // Throws, printing stdout, when anything but the document reached it.
    assert.deepEqual(Object.keys(done.json()).sort(), ['interrupted', 'lastStep', 'migrationId', 'phase', 'settled']);
  });
});
