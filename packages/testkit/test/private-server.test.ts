import assert from 'node:assert/strict';
import pg from 'pg';
import { privateServerUnavailable, startPrivateServer, type PrivateServer } from '../src/index.js';

describe('startPrivateServer', function () {
  this.timeout(120_000);
  let server: PrivateServer | undefined;

  before(function () {
    const reason = privateServerUnavailable();
    if (reason) {
      console.log(`      (skipped: ${reason})`);
      this.skip();
    }
  });

  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });

  it('takes max_connections from its options, for a fleet that needs more than the default 60', async () => {
    server = await startPrivateServer({ maxConnections: 150 });
    const client = new pg.Client(server.url);
    await client.connect();
    try {
      assert.equal((await client.query('SHOW max_connections')).rows[0].max_connections, '150');
    } finally {
      await client.end();
    }
  });

  it('refuses a max_connections it cannot start with, before doing anything', async () => {
    await assert.rejects(startPrivateServer({ maxConnections: 5 }), /maxConnections must be an integer from 10/);
    await assert.rejects(startPrivateServer({ maxConnections: 1.5 }), /maxConnections must be an integer from 10/);
  });
});
