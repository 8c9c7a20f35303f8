import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { LocalError, startPostgres } from '../src/index.js';
import { readPostmasterPid } from '../src/postmaster-pid.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function gone(pid: number, dir: string, ms = 60_000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(200)) {
    if (!alive(pid) && !existsSync(dir)) return true;
  }
  return false;
}

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
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes('\n')) resolve(out.split('\n')[0]!);
      });
      child.once('exit', (code) => reject(new Error(`exited early with ${String(code)}`)));
    });
    const { dataDir } = JSON.parse(line) as { dataDir: string };
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
