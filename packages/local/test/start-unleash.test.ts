import assert from 'node:assert/strict';
import { LocalError, startUnleash, type LocalUnleash } from '../src/index.js';
import { api, databasesLike, ownDataDirs } from './support.js';

const LOCAL_SERVER = process.env.PHASEFLAG_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

describe('startUnleash', function () {
  this.timeout(180_000);
  let server: LocalUnleash | undefined;
  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });

  it('on its own embedded PostgreSQL: the admin token drives the Admin API, the client token reads the flag, stop() leaves nothing', async () => {
    server = await startUnleash();
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(server.apiUrl, `${server.url}/api`);
    assert.match(server.database, /^unleash_[0-9a-f]{8}$/);
    assert.equal(ownDataDirs().length, 1, 'an embedded PostgreSQL of its own');

    const project = `/api/admin/projects/${server.project}/features`;
    const created = await api(server.url, project, server.adminToken, {
      method: 'POST',
      body: { name: 'local.flag', type: 'release' },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(
      (
        await api(server.url, `${project}/local.flag/environments/${server.environment}/on`, server.adminToken, {
          method: 'POST',
        })
      ).status,
      200,
    );
    // The client token reads the development environment through the Client API, as unleash-client does.
    const features = (await api(server.url, '/api/client/features', server.clientToken)).body as {
      features: Array<{ name: string; enabled: boolean }>;
    };
    assert.deepEqual(
      features.features.map((f) => [f.name, f.enabled]),
      [['local.flag', true]],
    );
    // A client token is not an admin token.
    assert.equal((await api(server.url, project, server.clientToken)).status, 403);
    // The web UI's login works on the fresh database.
    const login = await fetch(`${server.url}/auth/simple/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(server.login),
    });
    assert.equal(login.status, 200);

    const url = server.url;
    const postgresPort = Number(new URL(server.databaseUrl).port);
    await server.stop();
    server = undefined;
    await assert.rejects(fetch(`${url}/health`), 'nothing listens after stop()');
    await assert.rejects(
      databasesLike(`postgres://postgres:postgres@127.0.0.1:${postgresPort}/postgres`, 'unleash_'),
      'the embedded PostgreSQL is stopped too',
    );
    assert.deepEqual(ownDataDirs(), [], 'and its data directory deleted');
  });

  it("on a given PostgreSQL: flags survive restart(), and stop() drops Unleash's database and nothing else", async () => {
    server = await startUnleash({ databaseUrl: LOCAL_SERVER });
    const { database } = server;
    assert.deepEqual(await databasesLike(LOCAL_SERVER, database), [database]);
    const project = `/api/admin/projects/default/features`;
    await api(server.url, project, server.adminToken, { method: 'POST', body: { name: 'kept.flag' } });
    const port = server.port;
    let downStatus = 0;
    await server.restart({
      whileDown: async () => {
        downStatus = await fetch(`${server!.url}/health`).then(
          (r) => r.status,
          () => -1,
        );
      },
    });
    assert.equal(downStatus, -1, 'nothing listens while down');
    assert.equal(server.port, port);
    assert.equal((await api(server.url, `${project}/kept.flag`, server.adminToken)).status, 200);

    await server.stop();
    await server.stop(); // idempotent
    server = undefined;
    assert.deepEqual(await databasesLike(LOCAL_SERVER, database), []);
    assert.deepEqual(await databasesLike(LOCAL_SERVER, 'test'), ['test']);
  });

  it('refuses a port that is no TCP port, and names a taken one, starting nothing', async () => {
    await assert.rejects(
      startUnleash({ databaseUrl: LOCAL_SERVER, port: 70_000 }),
      (error: unknown) => error instanceof LocalError && error.code === 'PF_LOCAL_BAD_OPTION',
    );
    server = await startUnleash({ databaseUrl: LOCAL_SERVER });
    const before = await databasesLike(LOCAL_SERVER, 'unleash_');
    await assert.rejects(
      startUnleash({ databaseUrl: LOCAL_SERVER, port: server.port }),
      (error: unknown) =>
        error instanceof LocalError &&
        error.code === 'PF_LOCAL_UNLEASH_START' &&
        error.hint.includes(`Port ${server!.port} is taken`),
    );
    assert.deepEqual(await databasesLike(LOCAL_SERVER, 'unleash_'), before, 'the failed start dropped its database');
  });
});
