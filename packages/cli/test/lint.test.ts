import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSuiteSchema, type Suite } from '@phaseflag/testkit';
import { PLAN_JUSTIFICATIONS } from '../src/lint-run.js';
import { createOrders, ordersConfig, workdir, type Workdir } from './support.js';

const UNSAFE =
  "SET lock_timeout = '2s';\nCREATE TABLE t (id bigint);\n\nALTER TABLE orders ALTER COLUMN amount TYPE bigint;\n";
const SAFE = "SET lock_timeout = '2s';\nCREATE INDEX CONCURRENTLY orders_a ON orders (a);\n";
const WARNING_ONLY = 'CREATE TABLE t (id int PRIMARY KEY);\n';

function files(w: Workdir, entries: Record<string, string>): void {
  for (const [name, text] of Object.entries(entries)) {
    mkdirSync(join(w.dir, name, '..'), { recursive: true });
    writeFileSync(join(w.dir, name), text);
  }
}

describe('phaseflag lint without a database', function () {
  this.timeout(120_000);
  let w: Workdir;
  before(() => {
    // No DATABASE_URL and no config file at all: lint needs neither.
    w = workdir(undefined, { DATABASE_URL: '' });
    files(w, {
      'migrations/001_unsafe.sql': UNSAFE,
      'safe.sql': SAFE,
      'warn.sql': WARNING_ONLY,
      'bad.sql': 'SELECT 1;\nALTER TABL x;\n',
    });
  });
  after(() => w.remove());

  it('exit 1 on an error-level finding, printed at file:line:column with the safe way and the fix', async () => {
    const r = await w.run(['lint', 'migrations']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout, /^migrations\/001_unsafe\.sql:4:1 {2}error {2}changing-column-type$/m);
    assert.match(r.stdout, /A safer approach: 1\. add a new column/);
    assert.match(r.stdout, /defineMigration\(\{\n {6}id: 'orders-amount-type',/);
    assert.match(r.stdout, /1 error, 0 warnings \(1 file, 3 statements\)\./);
  });

  it('exit 0 when clean, and when there are warnings only', async () => {
    const clean = await w.run(['lint', 'safe.sql']);
    assert.equal(clean.code, 0, clean.stdout);
    assert.match(clean.stdout, /No unsafe DDL found \(1 file, 2 statements\)\./);
    const warn = await w.run(['lint', 'warn.sql']);
    assert.equal(warn.code, 0);
    assert.match(warn.stdout, /warn\.sql:1:20 {2}warning {2}prefer-bigint-over-int/);
  });

  it('--reporter json (and --json) print one document; --reporter github prints annotations', async () => {
    for (const args of [['--reporter', 'json'], ['--json']]) {
      const r = await w.run(['lint', 'migrations', ...args]);
      assert.equal(r.code, 1);
      const doc = r.json<{
        errors: number;
        warnings: number;
        files: number;
        findings: Array<Record<string, unknown>>;
      }>();
      assert.deepEqual([doc.errors, doc.warnings, doc.files], [1, 0, 1]);
      assert.equal(doc.findings[0]!.rule, 'changing-column-type');
      assert.equal(doc.findings[0]!.line, 4);
    }
    const gh = await w.run(['lint', 'migrations', '--reporter', 'github']);
    assert.equal(gh.code, 1);
    const [line] = gh.stdout.trim().split('\n');
    assert.match(
      line!,
      /^::error file=migrations\/001_unsafe\.sql,line=4,col=1,title=phaseflag lint%3A changing-column-type::ALTER COLUMN amount TYPE bigint rewrites orders/,
    );
    assert.match(line!, /%0AA safer approach/);
  });

  it('bad input is exit 2 with a typed code, and nothing is reported: syntax, missing file, unknown rule, nothing to lint', async () => {
    const syntax = await w.run(['lint', 'safe.sql', 'bad.sql']);
    assert.equal(syntax.code, 2);
    assert.equal(syntax.stdout, '');
    assert.match(syntax.stderr, /^PF_LINT_SYNTAX: bad\.sql:2:7: syntax error at or near "TABL"/m);
    const missing = await w.run(['lint', 'nope.sql']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^PF_LINT_FILE_NOT_FOUND: nope\.sql: no such file or directory/m);
    const rule = await w.run(['lint', 'safe.sql', '--exclude', 'no-such-rule', '--json']);
    assert.equal(rule.code, 2);
    assert.equal(rule.json<{ error: { code: string } }>().error.code, 'PF_LINT_UNKNOWN_RULE');
    const none = await w.run(['lint']);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /PF_USAGE_BAD_OPTION: Nothing to lint/);
  });

  it("the config's lint section: exclude, assumeInTransaction; a config without migrations is enough", async () => {
    const c = workdir(undefined, { DATABASE_URL: '' });
    try {
      files(c, { 'a.sql': 'ALTER TABLE orders DROP COLUMN legacy;\nCREATE INDEX CONCURRENTLY i ON orders (a);\n' });
      c.writeConfig(
        `import { defineConfig } from '@phaseflag/cli';\nexport default defineConfig({ lint: { exclude: ['require-lock-timeout'], assumeInTransaction: true } });\n`,
      );
      const r = await c.run(['lint', 'a.sql', '--json']);
      assert.deepEqual(
        r.json<{ findings: Array<{ rule: string }> }>().findings.map((f) => f.rule),
        ['ban-drop-column', 'ban-concurrent-index-creation-in-transaction'],
      );
      c.writeConfig(
        `import { defineConfig } from '@phaseflag/cli';\nexport default defineConfig({ migrations: [], lint: { exclude: ['ban-drop-colum'] } });\n`,
      );
      const bad = await c.run(['lint', 'a.sql']);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /^PF_LINT_UNKNOWN_RULE: The config's lint\.exclude names the rule "ban-drop-colum"/m);
    } finally {
      c.remove();
    }
  });

  it('--help documents the command with an example', async () => {
    const r = await w.run(['lint', '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /phaseflag-lint-ignore rule-a, rule-b/);
    assert.match(r.stdout, /npx phaseflag lint migrations\/ --reporter github/);
  });
});

describe('phaseflag lint with the live catalog (real Postgres)', function () {
  this.timeout(180_000);
  let suite: Suite;
  let w: Workdir;
  before(async () => {
    suite = await createSuiteSchema('cli_lint');
    await suite.knex.raw('CREATE TABLE big AS SELECT g AS id, md5(g::text) AS s FROM generate_series(1, 20000) g');
    await suite.knex.raw('CREATE TABLE tiny AS SELECT g AS id, md5(g::text) AS s FROM generate_series(1, 10) g');
    await suite.knex.raw('ANALYZE big; ANALYZE tiny');
    await createOrders(suite, 100);
    w = workdir(suite);
    files(w, {
      'm.sql': [
        "SET lock_timeout = '2s';",
        'CREATE TABLE fresh (id bigint, s text);',
        'CREATE INDEX fresh_s ON fresh (s);',
        'CREATE INDEX tiny_s ON tiny (s);',
        'CREATE INDEX big_s ON big (s);',
      ].join('\n'),
    });
  });
  after(async () => {
    w?.remove();
    await suite?.cleanup();
  });

  it('a table created in the file and a small table give no finding; a large one states its rows, size and hold time', async () => {
    const r = await w.run(['lint', 'm.sql', '--json']);
    assert.equal(r.code, 1, r.stderr);
    const findings = r.json<{ findings: Array<{ rule: string; line: number; message: string }> }>().findings;
    assert.deepEqual(
      findings.map((f) => [f.rule, f.line]),
      [['require-concurrent-index-creation', 5]],
    );
    assert.match(
      findings[0]!.message,
      new RegExp(
        `${suite.schema}\\.big holds ~20,000 rows in \\d+(\\.\\d)? MB: expect the lock to be held (about \\d+ s|under a second) \\(an index build`,
      ),
    );
    // Without the database the same file has two (the table it creates is known from the SQL alone).
    const sqlOnly = await w.run(['lint', 'm.sql', '--json'], { env: { DATABASE_URL: undefined } });
    assert.equal(sqlOnly.json<{ findings: unknown[] }>().findings.length, 2);
  });

  it("--migrations lints every declared migration's plan: clean, the justified findings aside", async () => {
    w.writeConfig(ordersConfig(suite.schema));
    const r = await w.run(['lint', '--migrations', '--json']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const doc = r.json<{ errors: number; warnings: number; statements: number }>();
    assert.deepEqual([doc.errors, doc.warnings], [0, 0]);
    assert.ok(doc.statements > 10);
    assert.deepEqual(
      PLAN_JUSTIFICATIONS.map((j) => [j.step, j.rule]),
      [
        ['drop-not-null', 'ban-drop-not-null'],
        ['drop-new-column', 'ban-drop-column'],
      ],
    );
  });
});
