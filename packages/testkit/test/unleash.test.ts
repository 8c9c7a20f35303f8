import assert from 'node:assert/strict';
import knex from 'knex';
import { resolveDatabase, startUnleash, type UnleashServer } from '../src/index.js';

describe('startUnleash', function () {
  let server: UnleashServer | undefined;
  after(async function () {
    await server?.stop();
  });

  it('gives @phaseflag/local’s Unleash an admin client that drives flags as an operator does, and drops its database on stop', async function () {
    server = await startUnleash();
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.match(server.database, /^unleash_[0-9a-f]{8}$/);

    await server.admin.createFlag('harness.flag', { description: 'made by the harness test' });
    const strategyId = await server.admin.addFlexibleRollout('harness.flag', server.environment, { rollout: 25 });
    await server.admin.enable('harness.flag', server.environment);

    await server.admin.setRollout('harness.flag', server.environment, strategyId, 75);
    const flag = await server.admin.getFlag('harness.flag');
    const env = flag!.environments.find((e) => e.name === server!.environment)!;
    assert.equal(env.enabled, true);
    assert.equal(env.strategies[0]!.parameters.rollout, '75');

    // The client token reads the development environment through the client API, as unleash-client does.
    const features = (await fetch(`${server.url}/api/client/features`, {
      headers: { Authorization: server.clientToken },
    }).then((r) => r.json())) as { features: Array<{ name: string }> };
    assert.ok(Array.isArray(features.features));

    const database = server.database;
    await server.stop();
    server = undefined;
    const held = await resolveDatabase();
    const admin = knex({ client: 'pg', connection: held.connectionString, pool: { min: 0, max: 1 } });
    try {
      const rows = await admin('pg_database').where({ datname: database }).select('datname');
      assert.deepEqual(rows, [], 'database dropped');
    } finally {
      await admin.destroy();
      await held.release();
    }
  });
});
