import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The benchmark must not rot: its quick run (every case, tiny tables) runs here end to end, in its own process and
 * its own database, and writes its RESULTS to a temporary file (bench/RESULTS.md is left alone). Nothing here is
 * timed: the figures of a quick run mean nothing; what is checked is that every case ran and reported.
 */
describe('the benchmark (npm run bench -- --quick)', function () {
  this.timeout(300_000);
  let dir: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'phaseflag-bench-'));
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs every case of issue 6 (and case 10, lint against squawk, and case 11, the peers) and writes a results table with a verdict for each target', async () => {
    const out = join(dir, 'RESULTS.md');
    const json = join(dir, 'results.json');
    const root = fileURLToPath(new URL('..', import.meta.url));
    const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', 'bench/run.ts', '--quick', '--out', out, '--json', json],
        {
          cwd: root,
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      );
      let err = '';
      child.stderr.on('data', (d: Buffer) => {
        err += d.toString();
      });
      child.on('error', reject);
      child.on('close', (c) => resolve({ code: c, stderr: err }));
    });
    assert.equal(code, 0, `bench --quick failed:\n${stderr.split('\n').slice(-30).join('\n')}`);

    const md = readFileSync(out, 'utf8');
    for (const heading of [
      '## The machine',
      '## Targets',
      '## 1. Backfill throughput',
      '## 2. What the backfill leaves behind',
      '## 3. Write amplification',
      '## 4. Live traffic',
      '## 5. Expand behind a long transaction',
      '## 6. Router overhead',
      '## 7. Memory',
      '## 8. Flag propagation',
      '## 9. A fleet of service instances',
      '## 11. Peers in the same run',
    ])
      assert.ok(md.includes(heading), `RESULTS has "${heading}"`);
    assert.match(md, /Quick smoke run/);
    assert.doesNotMatch(md, /case [\d, ]+ failed/);
    // Case 10 (phaseflag lint against squawk) writes a file of its own, beside --out.
    const lint = readFileSync(join(dir, 'LINT-RESULTS.md'), 'utf8');
    assert.match(lint, /^# phaseflag lint against squawk/);
    assert.match(lint, /## Every entry/);
    assert.doesNotMatch(lint, /The case failed/);

    const results = JSON.parse(readFileSync(json, 'utf8')) as {
      errors: unknown[];
      backfill: { runs: { method: string; correct: boolean }[] };
      expand: unknown[];
      traffic: unknown[];
      writeAmplification: { statements: unknown[] };
      router: { nsPerCall: { bare: number; router: number } };
      lint: { judged: unknown[] };
      peers: { runs: { method: string; wrongRows: number | null }[] };
    };
    assert.deepEqual(results.errors, []);
    assert.deepEqual([...new Set(results.backfill.runs.map((r) => r.method))].sort(), [
      'offset-loop',
      'phaseflag-1',
      'phaseflag-n',
      'single-update',
    ]);
    assert.ok(
      results.backfill.runs.every((r) => r.correct),
      'every method left every row right',
    );
    assert.equal(results.expand.length, 2);
    // single UPDATE, 1 worker, parallel, gentle, yielding (throttle.yieldToApplication), on one change.
    assert.equal(results.traffic.length, 5);
    assert.equal(results.writeAmplification.statements.length, 8);
    assert.ok(results.router.nsPerCall.bare > 0 && results.router.nsPerCall.router > 0);
    assert.ok(results.lint.judged.length >= 80);
    // Case 11: phaseflag beside pgroll's and reshape's backfills (reproduced); the ones with a trigger leave every row right.
    assert.deepEqual([...new Set(results.peers.runs.map((r) => r.method))].sort(), [
      'offset-loop',
      'pgroll',
      'phaseflag-1',
      'reshape',
      'single-update',
    ]);
    assert.ok(
      results.peers.runs
        .filter((r) => ['phaseflag-1', 'pgroll', 'reshape'].includes(r.method))
        .every((r) => r.wrongRows === 0),
      'phaseflag, pgroll and reshape left every row right',
    );
    // Every target row carries a verdict (pass, MISSED, a figure without target, or "not measured yet" with why).
    const targetRows = md
      .split('## Targets')[1]!
      .split('\n## ')[0]!
      .split('\n')
      .filter((l) => /^\| \d/.test(l));
    assert.ok(targetRows.length >= 30, `${targetRows.length} target rows`);
    for (const row of targetRows) assert.match(row, /\*\*pass\*\*|\*\*MISSED\*\*|figure only|not measured/, row);
  });
});
