import assert from 'node:assert/strict';
import { LintError, lintSql, type LintCatalog } from '../src/index.js';
import { only, rulesOf } from './support.js';

const MB = 1024 * 1024;
const catalog = (rows: number, bytes: number, columns?: LintCatalog['tables'][number]['columns']): LintCatalog => ({
  serverVersionNum: 150020,
  tables: [
    { schema: 'public', name: 'orders', rowsEstimate: rows, totalBytes: bytes, ...(columns ? { columns } : {}) },
  ],
});

describe('lint positions', () => {
  it('a finding points at the line and column of its statement, characters outside ASCII counted as one', async () => {
    const sql = '-- header\nSELECT \'ééé€\';\n\n   /* c */ CREATE INDEX i ON "Bestellwert €" (a);';
    const r = await lintSql(sql, { file: 'm.sql', exclude: ['require-lock-timeout'] });
    assert.equal(r.statements, 2);
    assert.deepEqual(
      r.findings.map((f) => [f.file, f.line, f.column, f.rule, f.statement]),
      [['m.sql', 4, 12, 'require-concurrent-index-creation', 'CREATE INDEX i ON "Bestellwert €" (a)']],
    );
  });

  it('an empty file, or one of comments only, has no statement and no finding', async () => {
    for (const sql of ['', '  \n', '-- nothing yet\n;\n/* later */'])
      assert.deepEqual(await lintSql(sql), { findings: [], statements: 0, files: 0 });
  });

  it('a file that does not parse is PF_LINT_SYNTAX at the file, line and column of the error', async () => {
    await assert.rejects(
      lintSql("SELECT 'é';\nALTER TABL orders ADD COLUMN a int;", { file: 'bad.sql' }),
      (e: unknown) => {
        assert.ok(e instanceof LintError);
        assert.equal(e.code, 'PF_LINT_SYNTAX');
        assert.deepEqual([e.file, e.line, e.column], ['bad.sql', 2, 7]);
        assert.match(e.message, /^bad\.sql:2:7: syntax error at or near "TABL"/);
        return true;
      },
    );
  });
});

describe('lint context no SQL-only linter has', () => {
  it('a blocking statement on a table created earlier in the same file is not a finding', async () => {
    const sql = [
      'CREATE TABLE accounts (id bigint PRIMARY KEY, email text);',
      'CREATE INDEX accounts_email ON accounts (email);',
      'ALTER TABLE accounts ALTER COLUMN email SET NOT NULL;',
      'ALTER TABLE accounts RENAME COLUMN email TO mail;',
      'ALTER TABLE orders RENAME COLUMN a TO b;',
    ].join('\n');
    assert.deepEqual(await rulesOf(sql), ['renaming-column', 'require-lock-timeout']);
  });

  it('with a catalog: nothing on a small table (size-dependent rules), the size and hold time on a large one', async () => {
    const sql = "SET lock_timeout = '2s';\nCREATE INDEX i ON orders (a);\nALTER TABLE orders DROP COLUMN legacy;";
    const small = await lintSql(sql, { catalog: catalog(500, 2 * MB) });
    // the index on a small table is over in milliseconds; a dropped column still breaks running clients
    assert.deepEqual(
      small.findings.map((f) => f.rule),
      ['ban-drop-column'],
    );
    const large = await lintSql(sql, { catalog: catalog(4_000_000, 800 * MB) });
    const index = large.findings.find((f) => f.rule === 'require-concurrent-index-creation')!;
    assert.match(
      index.message,
      /public\.orders holds ~4,000,000 rows in 800 MB: expect the lock to be held about \d+ min \(an index build at ~8 MB\/s, measured by bench\/lint-rates\.ts/,
    );
    // a short hold reads as one: "held under a second", not "held about under a second"
    const scan = await lintSql("SET lock_timeout = '2s';\nALTER TABLE orders ALTER COLUMN a SET NOT NULL;", {
      catalog: catalog(300_000, 40 * MB),
    });
    assert.match(scan.findings[0]!.message, /40\.0 MB: expect the lock to be held under a second \(a full scan at/);
    // the thresholds are the caller's
    const tight = await lintSql(sql, { catalog: catalog(500, 2 * MB), smallTable: { maxRows: 100 } });
    assert.ok(tight.findings.some((f) => f.rule === 'require-concurrent-index-creation'));
  });

  it("the server's version decides over pgVersion", async () => {
    const sql = "ALTER TABLE orders ADD COLUMN s text DEFAULT 'x';";
    assert.deepEqual(await only(sql, { pgVersion: 10 }), ['adding-field-with-default']);
    assert.deepEqual(await only(sql, { pgVersion: 10, catalog: { serverVersionNum: 150020, tables: [] } }), []);
  });

  it('an unqualified name is the table the search path finds first, as Postgres resolves it', async () => {
    const sql = 'CREATE INDEX i ON orders (a);';
    const tables = [
      { schema: 'app', name: 'orders', rowsEstimate: 200, totalBytes: 64 * 1024 },
      { schema: 'other', name: 'orders', rowsEstimate: 4_000_000, totalBytes: 800 * MB },
    ];
    const onPath = (searchPath: string[]) => only(sql, { catalog: { serverVersionNum: 150020, searchPath, tables } });
    assert.deepEqual(await onPath(['app', 'public']), []);
    assert.deepEqual(await onPath(['other', 'app']), ['require-concurrent-index-creation']);
    // On none of the path's schemas, and two of that name elsewhere: the size is unknown, the statement is judged.
    assert.deepEqual(await onPath(['public']), ['require-concurrent-index-creation']);
  });

  it('with the column types from the catalog, changing-column-type is judged exactly', async () => {
    const columns = [{ name: 'note', type: 'character varying(20)', notNull: true }];
    const sql = 'ALTER TABLE orders ALTER COLUMN note TYPE text;';
    assert.deepEqual(await only(sql, { catalog: catalog(4_000_000, 800 * MB, columns) }), []);
    const r = await lintSql(`SET lock_timeout = '1s'; ALTER TABLE orders ALTER COLUMN note TYPE varchar(10);`, {
      catalog: catalog(4_000_000, 800 * MB, columns),
    });
    assert.match(r.findings[0]!.message, /TYPE varchar\(10\) from varchar\(20\) rewrites orders/);
    assert.match(r.findings[0]!.fix!, /reverse: 'note_new::varchar\(20\)'/);
    assert.match(r.findings[0]!.fix!, /nullable: false/);
  });
});

describe('lint ignore comments, exclusions and bad rule names', () => {
  it('-- phaseflag-lint-ignore silences the named rules for the next statement only', async () => {
    const sql = [
      "SET lock_timeout = '2s';",
      '-- phaseflag-lint-ignore renaming-column, ban-drop-column',
      'ALTER TABLE orders RENAME COLUMN a TO b;',
      'ALTER TABLE orders RENAME COLUMN c TO d;',
    ].join('\n');
    assert.deepEqual(await rulesOf(sql), ['renaming-column']);
    assert.equal((await lintSql(sql)).findings[0]!.line, 4);
  });

  it('-- phaseflag-lint-ignore-file silences a rule everywhere in the file, wherever the comment is', async () => {
    const sql =
      'ALTER TABLE orders DROP COLUMN a;\nALTER TABLE orders DROP COLUMN b;\n-- phaseflag-lint-ignore-file require-lock-timeout\n';
    assert.deepEqual(await rulesOf(sql), ['ban-drop-column', 'ban-drop-column']);
  });

  it('exclude leaves a rule out', async () => {
    assert.deepEqual(await rulesOf('ALTER TABLE orders DROP COLUMN a;', { exclude: ['require-lock-timeout'] }), [
      'ban-drop-column',
    ]);
  });

  it('an unknown rule in a comment or in exclude is PF_LINT_UNKNOWN_RULE, naming it and where', async () => {
    await assert.rejects(
      lintSql('SELECT 1;\n-- phaseflag-lint-ignore no-such-rule\nSELECT 2;', { file: 'x.sql' }),
      (e: unknown) =>
        e instanceof LintError &&
        e.code === 'PF_LINT_UNKNOWN_RULE' &&
        e.value === 'no-such-rule' &&
        e.line === 2 &&
        e.file === 'x.sql',
    );
    await assert.rejects(
      lintSql('SELECT 1', { exclude: ['adding-feild-with-default'] }),
      (e: unknown) => e instanceof LintError && e.code === 'PF_LINT_UNKNOWN_RULE' && /Known rules: /.test(e.hint),
    );
  });
});
