import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import knex from 'knex';
import { LOCAL_DATABASE_URL, resolveDatabase, waitFor } from '../src/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const packageRoot = join(here, '..');

interface ChildRun {
  code: number | null;
  report: Record<string, unknown>;
  stderr: string;
}

/** Runs the fixture in a fresh Node process: the database choice is memoised per process. */
function runChild(mode: string, env: Record<string, string>): Promise<ChildRun> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  if (!('PHASEFLAG_DATABASE_URL' in env)) delete childEnv.PHASEFLAG_DATABASE_URL;
  if (!('PHASEFLAG_EMBEDDED' in env)) delete childEnv.PHASEFLAG_EMBEDDED;
  return new Promise((resolve, reject) => {
    const child = execFile(
      process.execPath,
      ['--import', 'tsx', join(here, 'fixtures', 'embedded-child.ts'), mode],
      { cwd: packageRoot, env: childEnv, timeout: 60_000 },
      (error, stdout, stderr) => {
        const line = stdout.trim().split('\n').pop() ?? '';
        try {
          resolve({ code: child.exitCode, report: JSON.parse(line) as Record<string, unknown>, stderr });
        } catch {
          reject(new Error(`child produced no report (exit ${child.exitCode}): ${stderr || error?.message}`));
        }
      },
    );
  });
}

describe('resolveDatabase', function () {
  it('picks the local server at 127.0.0.1:5432 when it answers and nothing is configured', async function () {
    if (process.env.PHASEFLAG_DATABASE_URL || process.env.PHASEFLAG_EMBEDDED) {
      console.log('      (skipped: PHASEFLAG_DATABASE_URL or PHASEFLAG_EMBEDDED is set for this run)');
      this.skip();
    }
    const database = await resolveDatabase();
    try {
      assert.equal(database.kind, 'local');
      assert.equal(database.connectionString, LOCAL_DATABASE_URL);
      const db = knex({ client: 'pg', connection: database.connectionString, pool: { min: 0, max: 1 } });
      const { rows } = await db.raw('SELECT current_database() AS name');
      await db.destroy();
      assert.equal(rows[0].name, 'test');
    } finally {
      await database.release();
    }
  });

  it('uses PHASEFLAG_DATABASE_URL when it is set', async function () {
    const run = await runChild('query', { PHASEFLAG_DATABASE_URL: LOCAL_DATABASE_URL });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.report.kind, 'env');
    assert.match(run.stderr, /\[phaseflag\/testkit\] database: env /);
  });

  describe('with PHASEFLAG_EMBEDDED=1', function () {
    it('starts an embedded server, answers queries in database "test", and deletes its data on release', async function () {
      const run = await runChild('query', { PHASEFLAG_EMBEDDED: '1' });
      console.log(`      (embedded resolve took ${String(run.report.startMs)} ms in the child)`);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.report.kind, 'embedded');
      assert.equal(run.report.database, 'test');
      assert.equal(run.report.answer, 42);
      assert.equal(run.report.dataDirGone, true);
      assert.match(run.stderr, /database: embedded postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/test/);
    });

    it('does not mask the exit code of a process that ends naturally', async function () {
      const run = await runChild('exit-code', { PHASEFLAG_EMBEDDED: '1' });
      assert.equal(run.code, 3, run.stderr);
    });

    it('keeps one server across suites while mochaHooks hold it', async function () {
      const run = await runChild('held', { PHASEFLAG_EMBEDDED: '1' });
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(run.report, { kind: 'embedded', sameServer: true });
      assert.equal(run.stderr.match(/database: embedded/g)?.length, 1, 'started once');
    });

    it('stops the server and removes its data when the process exits without release', async function () {
      const run = await runChild('leak', { PHASEFLAG_EMBEDDED: '1' });
      assert.equal(run.code, 0, run.stderr);
      const dataDir = String(run.report.data_dir);
      await waitFor(() => !existsSync(dataDir), { timeoutMs: 15_000, description: `${dataDir} to be removed` });
    });

    it('stops the server and removes its data when the process is killed with SIGTERM', async function () {
      const run = await runChild('sigterm', { PHASEFLAG_EMBEDDED: '1' });
      assert.equal(run.code, 128 + 15, run.stderr);
      const dataDir = String(run.report.data_dir);
      await waitFor(() => !existsSync(dataDir), { timeoutMs: 15_000, description: `${dataDir} to be removed` });
    });
  });
});
