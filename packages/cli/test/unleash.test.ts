import assert from 'node:assert/strict';
import { createSuiteSchema, startUnleash, waitFor, type Suite, type UnleashServer } from '@phaseflag/testkit';
import { EXIT } from '../src/exit-codes.js';
import { createOrders, ordersConfig, phaseOf, workdir, wrongRows, type Workdir } from './support.js';

const FLAGS = [
  'orders-amount.dual-write',
  'orders-amount.backfill',
  'orders-amount.read-new',
  'orders-amount.contract',
];

describe('phaseflag CLI against a real Unleash: provision, status, run', function () {
  this.timeout(180_000);
  let suite: Suite;
  let unleash: UnleashServer;
  let w: Workdir;

  before(async () => {
    suite = await createSuiteSchema('cli unleash');
    unleash = await startUnleash();
    w = workdir(suite, {
      UNLEASH_URL: unleash.url,
      UNLEASH_API_TOKEN: unleash.clientToken,
      UNLEASH_ADMIN_TOKEN: unleash.adminToken,
    });
    w.writeConfig(ordersConfig(suite.schema));
    await createOrders(suite, 2000);
  });
  after(async () => {
    w?.remove();
    await unleash?.stop();
    await suite?.cleanup();
  });

  /** The server publishes a change with its next revision (its job runs every second): wait until clients see it. */
  const flagsSeen = (expected: boolean[]) =>
    waitFor(
      async () => {
        const flags = (await w.run(['status', 'orders-amount', '--json'])).json().migrations[0].flags as Array<{
          enabled: boolean;
        }>;
        return JSON.stringify(flags.map((f) => f.enabled)) === JSON.stringify(expected);
      },
      { timeoutMs: 20_000, description: `flags ${expected.join(',')} to reach clients` },
    );

  it('provision creates the four flags off with their rollouts; a rerun creates nothing; no admin token is a usage error', async () => {
    const r = await w.run(['provision', 'orders-amount', '--json']);
    assert.equal(r.code, EXIT.ok, r.stderr);
    const report = r.json();
    assert.deepEqual(report.created, FLAGS);
    assert.equal(report.environment, 'development');
    for (const name of FLAGS) {
      const f = await unleash.admin.getFlag(name);
      assert.equal(f?.environments.find((e) => e.name === 'development')?.enabled, false, `${name} is off`);
    }
    const again = await w.run(['provision', 'orders-amount']);
    assert.equal(again.code, EXIT.ok);
    assert.match(again.stdout, /Nothing to do: every flag exists\./);

    const noToken = await w.run(['provision', 'orders-amount'], { env: { UNLEASH_ADMIN_TOKEN: undefined } });
    assert.equal(noToken.code, EXIT.usage);
    assert.match(noToken.stderr, /^PF_USAGE_NO_UNLEASH: /);
    const badToken = await w.run(['provision', 'orders-amount', '--json'], {
      env: { UNLEASH_ADMIN_TOKEN: '*:*.not-a-token' },
    });
    assert.equal(badToken.code, EXIT.unavailable, badToken.stderr);
    assert.equal(badToken.json().error.code, 'PF_UNLEASH_REJECTED');
  });

  it('status shows the flags as Unleash has them and what they ask for; run drives the migration to where they point and exits 0', async () => {
    const before = (await w.run(['status', 'orders-amount', '--json'])).json().migrations[0];
    assert.equal(before.flagSource, 'unleash');
    assert.deepEqual(
      before.flags.map((f: { enabled: boolean }) => f.enabled),
      [false, false, false, false],
    );
    assert.deepEqual(before.next, { kind: 'none', action: null, why: 'waiting for the dual-write flag', hint: null });

    await unleash.admin.enable('orders-amount.dual-write', 'development');
    await unleash.admin.enable('orders-amount.backfill', 'development');
    await flagsSeen([true, true, false, false]);
    const started = Date.now();
    const run = await w.run(['run', 'orders-amount', '--interval', '200', '--json'], { timeoutMs: 90_000 });
    assert.equal(run.code, EXIT.ok, run.stderr);
    const result = run.json();
    assert.equal(result.phase, 'verified');
    assert.equal(result.settled, true);
    assert.match(result.lastStep.why, /waiting for the read-new flag/);
    assert.match(run.stderr, /phase backfilling/);
    assert.equal(await wrongRows(suite), 0);
    console.log(
      `      (run: flags on → verified in ${Date.now() - started} ms, process start, expand, backfill of 2000 rows and verify included)`,
    );

    const after = await w.run(['status', 'orders-amount']);
    assert.equal(after.code, EXIT.ok);
    assert.match(after.stdout, /orders-amount\.dual-write: on \(100%\)/);
    assert.match(after.stdout, /orders-amount\.read-new: off/);
    assert.match(after.stdout, /by the flags │ waiting for the read-new flag/);
    assert.match(after.stdout, /read-new +│ read-new +│ holds/);
  });

  it('run exits 3 with the reason when the flags ask for what the database refuses', async () => {
    await unleash.admin.enable('orders-amount.contract', 'development');
    await flagsSeen([true, true, false, true]);
    const run = await w.run(['run', 'orders-amount', '--interval', '200', '--json'], { timeoutMs: 60_000 });
    assert.equal(run.code, EXIT.refused, run.stderr);
    const result = run.json();
    assert.equal(result.lastStep.kind, 'refuse');
    assert.equal(result.lastStep.code, 'contract-before-read-new');
    assert.equal(await phaseOf(suite, 'orders-amount'), 'verified', 'nothing moved');
  });

  it('run waits on flags Unleash does not know, says why, and gives up at --timeout (exit 3)', async () => {
    const other = workdir(suite, w.env);
    try {
      other.writeConfig(ordersConfig(suite.schema, 'never-provisioned'));
      const r = await other.run(['run', 'never-provisioned', '--interval', '200', '--timeout', '2', '--json'], {
        timeoutMs: 60_000,
      });
      assert.equal(r.code, EXIT.refused, r.stderr);
      assert.match(
        r.stderr,
        /the dual-write flag is unknown \(unknown to Unleash: not provisioned yet\? phaseflag provision never-provisioned/,
      );
      assert.match(r.stderr, /not settled within --timeout 2 s/);
      assert.equal(r.json().settled, false);
    } finally {
      other.remove();
    }
  });

  it('run without Unleash settings is a usage error', async () => {
    const r = await w.run(['run', 'orders-amount'], { env: { UNLEASH_URL: undefined, UNLEASH_API_TOKEN: undefined } });
    assert.equal(r.code, EXIT.usage);
    assert.match(r.stderr, /^PF_USAGE_NO_UNLEASH: /);
  });
});
