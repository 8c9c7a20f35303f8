import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RULES } from '@phaseflag/lint';
import { coverage } from '../bench/cases/lint-judge.js';
import { loadCorpus } from '../bench/lint-corpus/load.js';

/**
 * Case 10 of the benchmark (issue 14): the corpus phaseflag lint is measured on against squawk, and the case's own
 * report, from a run of that case alone (`npm run bench -- --only 10`) into a temporary folder.
 */
describe('the lint benchmark (case 10): corpus and report', function () {
  this.timeout(240_000);

  it('the corpus holds at least 80 statements, every rule unsafe and safe, in plain SQL and in knex form', () => {
    const corpus = loadCorpus();
    assert.ok(corpus.length >= 80, `${corpus.length} entries`);
    const names = RULES.map((r) => r.name);
    for (const { rule, missing } of coverage(corpus, names))
      assert.deepEqual(missing, [], `${rule} lacks ${missing.join(', ')}`);
    for (const e of corpus) assert.ok(e.rule === 'none' || names.includes(e.rule), `${e.id}: unknown rule ${e.rule}`);
    // The catalog-aware cases: each blocking statement on the large table, the small one and a same-file table.
    const catalog = corpus.filter((e) => e.catalog);
    for (const where of ['large', 'small', 'same-file'] as const)
      assert.ok(catalog.filter((e) => e.catalog === where).length >= 4, `catalog ${where}`);
    // The blocking statements are unsafe on the large table only; widening a varchar is safe even there.
    for (const e of catalog)
      assert.equal(e.verdict, e.catalog === 'large' && !e.id.includes('widen') ? 'unsafe' : 'safe', e.id);
  });

  it('runs alone with --only 10 and writes LINT-RESULTS.md: targets, every entry, squawk version; RESULTS.md left alone', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'phaseflag-bench-lint-'));
    try {
      const lintOut = join(dir, 'LINT-RESULTS.md');
      const out = join(dir, 'RESULTS.md');
      const root = fileURLToPath(new URL('..', import.meta.url));
      const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
        const child = spawn(
          process.execPath,
          ['--import', 'tsx', 'bench/run.ts', '--quick', '--only', '10', '--out', out, '--lint-out', lintOut],
          { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] },
        );
        let err = '';
        child.stderr.on('data', (d: Buffer) => {
          err += d.toString();
        });
        child.on('error', reject);
        child.on('close', (c) => resolve({ code: c, stderr: err }));
      });
      assert.equal(code, 0, `bench --only 10 failed:\n${stderr.split('\n').slice(-30).join('\n')}`);
      assert.ok(!existsSync(out), 'RESULTS.md is not written when only case 10 ran');
      const md = readFileSync(lintOut, 'utf8');
      for (const heading of ['## Targets', '## How it ran', '## By rule', '## Disagreements', '## Every entry'])
        assert.ok(md.includes(heading), `LINT-RESULTS has "${heading}"`);
      assert.match(md, /squawk 2\.\d+\.\d+/);
      const targetRows = md
        .split('## Targets')[1]!
        .split('\n## ')[0]!
        .split('\n')
        .filter((l) => l.startsWith('| 10 '));
      assert.equal(targetRows.length, 5);
      for (const row of targetRows) assert.match(row, /\*\*pass\*\*|\*\*MISSED\*\*/, row);
      const entryRows = md
        .split('## Every entry')[1]!
        .split('\n')
        .filter((l) => /^\| (sql|knex|catalog)\//.test(l));
      assert.equal(entryRows.length, loadCorpus().length);
      // VALIDATE CONSTRAINT then SET NOT NULL (the safe way's steps 2 and 3): phaseflag clears them, as squawk does
      for (const id of ['sql/adding-not-nullable-field.safe.sql', 'knex/adding-not-nullable-field.safe.js'])
        assert.match(entryRows.find((l) => l.startsWith(`| ${id} `)) ?? id, /\| — ✓ \|.*\| yes \|$/, id);
      assert.match(
        targetRows.find((r) => r.includes('every disagreement explained'))!,
        /\*\*pass\*\*/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
