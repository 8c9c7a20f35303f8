import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import pg from 'pg';
import { LocalError, startPostgres } from '../src/index.js';
import { readPostmasterPid } from '../src/postmaster-pid.js';
import { alive, gone, spawnScript } from './support.js';

describe('startPostgres', function () {
  this.timeout(180_000);

  it('starts a server with the database asked for, answers on its URL, and leaves nothing behind on stop()', async () => {
    const server = await startPostgres({ database: 'odd "name" db' });
    const pid = readPostmasterPid(server.dataDir);
    assert.ok(pid !== undefined);
    assert.equal(server.database, 'odd "name" db');
    assert.match(server.url, new RegExp(`^postgres://postgres:postgres@127\\.0\\.0\\.1:${server.port}/`));
    const client = new pg.Client({ connectionString: server.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ db: string; v: string }>(
        "SELECT current_database() AS db, current_setting('server_version_num') AS v",
      );
      assert.equal(rows[0]!.db, 'odd "name" db');
      assert.ok(Number(rows[0]!.v) >= 170000);
    } finally {
      await client.end();
    }
    await server.stop();
    await server.stop(); // idempotent
    assert.equal(alive(pid), false);
    assert.equal(existsSync(server.dataDir), false);
  });

  it('stops the server and deletes its directory when the process is interrupted (Ctrl-C)', async () => {
    const script =
      "import('@phaseflag/local').then(async ({ startPostgres }) => { const s = await startPostgres(); " +
      'console.log(JSON.stringify({ dataDir: s.dataDir })); setInterval(() => {}, 1000); })';
    const { child, first } = await spawnScript<{ dataDir: string }>(script);
    const { dataDir } = first;
    const pid = readPostmasterPid(dataDir);
    assert.ok(pid !== undefined && alive(pid));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGINT');
    assert.equal(await exited, 130);
    assert.ok(await gone(pid, dataDir), `postmaster ${pid} or ${dataDir} is still there`);
  });

  it('refuses a database name Postgres cannot have, before starting anything', async () => {
    await assert.rejects(
      startPostgres({ database: 'x'.repeat(64) }),
      (error: unknown) => error instanceof LocalError && error.code === 'PF_LOCAL_BAD_OPTION',
    );
  });
});
