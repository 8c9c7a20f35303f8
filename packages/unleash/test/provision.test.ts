import assert from 'node:assert/strict';
import { isPhaseflagError } from '@phaseflag/core';
import { startUnleash, type AdminFeature, type UnleashServer } from '@phaseflag/testkit';
import { provisionFlags, UnleashRejectedError, UnleashUnavailableError } from '../src/index.js';
import { ENV, closedPort, ordersMigration } from './support.js';

describe('provisionFlags against a real Unleash', () => {
  let server: UnleashServer;
  before(async () => {
    server = await startUnleash();
  });
  after(() => server?.stop());

  const adminOf = () => ({ url: server.url, token: server.adminToken });

  /**
   * What the Admin API shows of a migration's flags: everything an operator sees in the UI, except `lifecycle`,
   * which Unleash writes by itself a moment after a flag is created (its "initial" stage, recorded asynchronously):
   * a view taken right after creation may or may not have it yet, whatever provisioning does.
   */
  async function view(names: readonly string[]): Promise<Array<{ flag: AdminFeature | undefined; tags: unknown }>> {
    return Promise.all(
      names.map(async (name) => {
        const flag = await server.admin.getFlag(name);
        if (flag) delete flag.lifecycle;
        return { flag, tags: await server.admin.getTags(name) };
      }),
    );
  }

  it('creates the four flags off, each described, tagged with the migration id and holding a gradual rollout', async () => {
    const migration = ordersMigration();
    const report = await provisionFlags(migration, adminOf());

    const names = [
      migration.flags.dualWrite,
      migration.flags.backfill,
      migration.flags.readNew,
      migration.flags.contract,
    ];
    assert.deepEqual(report.created, names);
    assert.deepEqual(report.existing, []);
    assert.deepEqual(report.tag, { type: 'simple', value: migration.id });

    for (const { flag, tags } of await view(names)) {
      assert.ok(flag, 'flag exists');
      assert.equal(flag.type, 'operational');
      assert.ok(
        flag.environments.every((e) => !e.enabled),
        `${flag.name} is off in every environment`,
      );
      assert.match(flag.description ?? '', /Guard:/, `${flag.name} says which guard protects it`);
      assert.deepEqual(tags, [{ type: 'simple', value: migration.id }]);
      const strategies = flag.environments.find((e) => e.name === ENV)!.strategies;
      assert.equal(strategies.length, 1, `${flag.name} has exactly one strategy in ${ENV}`);
      const readNew = flag.name === migration.flags.readNew;
      assert.equal(strategies[0]!.name, 'flexibleRollout');
      assert.deepEqual(strategies[0]!.parameters, {
        rollout: readNew ? '0' : '100',
        stickiness: 'default',
        groupId: flag.name,
      });
    }
    const readNew = (await server.admin.getFlag(migration.flags.readNew))!;
    assert.equal(
      readNew.description,
      `phaseflag migration "${migration.id}", step 3 of 4. Reads of orders.amount_cents move to orders.amount for the users in this rollout. ` +
        'Guard: only after phaseflag verified every row; turning it on earlier is refused. Turning it off moves reads back at once.',
    );
  });

  it('a second run changes nothing, and leaves flags the operator changed exactly as they are', async () => {
    const migration = ordersMigration();
    const names = Object.values(migration.flags);
    await provisionFlags(migration, adminOf());

    // The operator rolls read-new out to 30% and turns it on, and edits nothing else.
    const readNew = (await server.admin.getFlag(migration.flags.readNew))!;
    const strategyId = readNew.environments.find((e) => e.name === ENV)!.strategies[0]!.id;
    await server.admin.setRollout(migration.flags.readNew, ENV, strategyId, 30);
    await server.admin.enable(migration.flags.readNew, ENV);

    const before = await view(names);
    const second = await provisionFlags(migration, adminOf());
    const after = await view(names);

    assert.deepEqual(after, before, 'the Admin API view is identical before and after the second run');
    assert.deepEqual(second.created, []);
    assert.deepEqual(second.existing, [
      migration.flags.dualWrite,
      migration.flags.backfill,
      migration.flags.readNew,
      migration.flags.contract,
    ]);
    const reportedReadNew = second.flags.find((f) => f.role === 'readNew')!;
    assert.equal(reportedReadNew.status, 'existing');
    assert.match(reportedReadNew.warnings.join(' '), /already on/);
  });

  it('warns about an existing flag without a strategy (Unleash would add a 100% rollout when it is turned on)', async () => {
    const migration = ordersMigration();
    await server.admin.createFlag(migration.flags.readNew, { description: 'made by hand' });
    const report = await provisionFlags(migration, adminOf());
    assert.deepEqual(report.existing, [migration.flags.readNew]);
    assert.equal(report.created.length, 3);
    assert.match(report.flags.find((f) => f.role === 'readNew')!.warnings[0]!, /no strategy.*100% rollout/);
    assert.equal((await server.admin.getFlag(migration.flags.readNew))!.description, 'made by hand');
  });

  it('refuses a name held by an archived flag with PF_UNLEASH_REJECTED, the status and what to do', async () => {
    const migration = ordersMigration();
    await server.admin.createFlag(migration.flags.backfill);
    await server.admin.archive(migration.flags.backfill);
    await assert.rejects(provisionFlags(migration, adminOf()), (error: unknown) => {
      assert.ok(error instanceof UnleashRejectedError);
      assert.equal(error.code, 'PF_UNLEASH_REJECTED');
      assert.equal(error.status, 409);
      assert.match(error.hint, /archive/);
      return true;
    });
  });

  it('refuses bad credentials, a client token and a missing environment before creating anything', async () => {
    const migration = ordersMigration();
    const rejected = (status: number) => (error: unknown) => {
      assert.ok(isPhaseflagError(error, 'PF_UNLEASH_REJECTED'), String(error));
      assert.equal((error as UnleashRejectedError).status, status);
      return true;
    };
    await assert.rejects(provisionFlags(migration, { url: server.url, token: 'not-a-token' }), rejected(401));
    await assert.rejects(provisionFlags(migration, { url: server.url, token: server.clientToken }), rejected(403));
    await assert.rejects(provisionFlags(migration, { ...adminOf(), environment: 'staging' }), rejected(404));
    assert.equal(await server.admin.getFlag(migration.flags.dualWrite), undefined, 'nothing was created');
  });

  it('says PF_UNLEASH_UNAVAILABLE when nothing listens at the URL', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    await assert.rejects(
      provisionFlags(ordersMigration(), { url, token: server.adminToken, timeoutMs: 2000 }),
      (error: unknown) => {
        assert.ok(error instanceof UnleashUnavailableError);
        assert.equal(error.code, 'PF_UNLEASH_UNAVAILABLE');
        assert.match(error.message, /ECONNREFUSED/);
        return true;
      },
    );
  });
});
