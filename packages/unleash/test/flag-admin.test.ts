import assert from 'node:assert/strict';
import { isPhaseflagError } from '@phaseflag/core';
import { startUnleash, type UnleashServer } from '@phaseflag/testkit';
import { provisionFlags, UnleashFlagAdmin } from '../src/index.js';
import { ordersMigration } from './support.js';

describe('UnleashFlagAdmin: an operator turning a migration’s flags on and moving its rollout', () => {
  let server: UnleashServer;
  before(async () => {
    server = await startUnleash();
  });
  after(() => server?.stop());

  const envOf = async (flag: string) =>
    (await server.admin.getFlag(flag))!.environments.find((e) => e.name === 'development')!;

  it('turns flags on and off and moves the provisioned rollout, found by itself or by its id', async () => {
    const migration = ordersMigration();
    const report = await provisionFlags(migration, { url: server.url, token: server.adminToken });
    const admin = new UnleashFlagAdmin({ url: server.url, token: server.adminToken });
    const { dualWrite, readNew } = migration.flags;

    await admin.enable(dualWrite);
    assert.equal((await envOf(dualWrite)).enabled, true);
    await admin.disable(dualWrite);
    assert.equal((await envOf(dualWrite)).enabled, false);

    await admin.setRollout(readNew, 50);
    assert.equal((await envOf(readNew)).strategies[0]!.parameters.rollout, '50');
    const strategyId = report.flags.find((f) => f.name === readNew)!.strategyId!;
    await admin.setRollout(readNew, 100, { strategyId });
    await admin.enable(readNew);
    const env = await envOf(readNew);
    assert.equal(env.enabled, true);
    assert.deepEqual(
      env.strategies.map((s) => s.parameters.rollout),
      ['100'],
      'the same strategy moved, none added',
    );
  });

  it('refuses a rollout that is no percentage, and a flag with no rollout to move, changing nothing', async () => {
    const admin = new UnleashFlagAdmin({ url: server.url, token: server.adminToken });
    await assert.rejects(
      admin.setRollout('whatever', 101),
      (e: unknown) => isPhaseflagError(e) && e.code === 'PF_INVALID_OPTIONS',
    );
    await assert.rejects(
      admin.setRollout('no.such.flag', 10),
      (e: unknown) =>
        isPhaseflagError(e) && e.code === 'PF_INVALID_OPTIONS' && /Provision the migration/.test(e.hint ?? ''),
    );
  });
});
