import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { LintError, lintFiles } from '../src/index.js';

const fixture = (p: string) => fileURLToPath(new URL(`./fixtures/${p}`, import.meta.url));

describe('lintFiles: knex migrations captured without a database', () => {
  it('captures the SQL knex would send for up(), each finding at the line of the call that sent it', async () => {
    const r = await lintFiles([fixture('knex/20260101_orders.cjs')]);
    assert.equal(r.files, 1);
    assert.equal(r.statements, 5);
    assert.deepEqual(
      r.findings.map((f) => [f.line, f.rule]),
      [
        [3, 'require-concurrent-index-creation'],
        [3, 'require-lock-timeout'],
        [6, 'changing-column-type'],
        [6, 'require-lock-timeout'],
      ],
    );
    assert.equal(r.findings[0]!.statement, 'create index "orders_customer_id_index" on "orders" ("customer_id")');
    assert.match(r.findings[0]!.file, /20260101_orders\.cjs$/);
  });

  it('a TypeScript migration with config = { transaction: false } runs outside a transaction: CONCURRENTLY is fine', async () => {
    const r = await lintFiles([fixture('knex/20260102_concurrent.ts')]);
    assert.deepEqual(
      r.findings.map((f) => [f.line, f.rule]),
      [[9, 'ban-drop-column']],
    );
  });

  it("knex's default migration transaction makes CONCURRENTLY fail, and lint says so", async () => {
    const r = await lintFiles([fixture('knex/20260103_in_transaction.mjs')]);
    assert.deepEqual(
      r.findings.map((f) => [f.line, f.rule]),
      [[3, 'ban-concurrent-index-creation-in-transaction']],
    );
  });

  it('// phaseflag-lint-ignore above a call and // phaseflag-lint-ignore-file work in a knex migration', async () => {
    const r = await lintFiles([fixture('knex/20260104_ignored.cjs')]);
    assert.deepEqual(
      r.findings.map((f) => [f.line, f.rule]),
      [[5, 'ban-drop-column']],
    );
  });

  it('a migration whose up() needs real rows is PF_LINT_MIGRATION_LOAD, naming the file', async () => {
    await assert.rejects(lintFiles([fixture('knex/broken.cjs')]), (e: unknown) => {
      assert.ok(e instanceof LintError);
      assert.equal(e.code, 'PF_LINT_MIGRATION_LOAD');
      assert.match(e.message, /broken\.cjs: up\(\) failed while its SQL was captured: needs rows/);
      return true;
    });
  });
});

describe('lintFiles: files and directories', () => {
  it('a directory is every .sql and migration file under it, in path order', async () => {
    await assert.rejects(
      lintFiles([fixture('sql')]),
      (e: unknown) => e instanceof LintError && e.code === 'PF_LINT_SYNTAX',
    );
    const r = await lintFiles([fixture('sql/001_safe.sql')]);
    assert.deepEqual([r.files, r.statements, r.findings.length], [1, 3, 0]);
  });

  it('a bad statement is PF_LINT_SYNTAX at its file, line and column', async () => {
    await assert.rejects(lintFiles([fixture('sql/002_bad_syntax.sql')]), (e: unknown) => {
      assert.ok(e instanceof LintError);
      assert.equal(e.code, 'PF_LINT_SYNTAX');
      // `ADD COLUM x` reads as a column named colum of type x: the error is at `int`
      assert.deepEqual([e.line, e.column], [2, 32]);
      assert.match(String(e.file), /002_bad_syntax\.sql$/);
      return true;
    });
  });

  it('a missing path is PF_LINT_FILE_NOT_FOUND, another kind of file PF_LINT_UNSUPPORTED_FILE', async () => {
    await assert.rejects(
      lintFiles(['no/such.sql']),
      (e: unknown) => e instanceof LintError && e.code === 'PF_LINT_FILE_NOT_FOUND',
    );
    await assert.rejects(
      lintFiles([fixture('../../package.json')]),
      (e: unknown) => e instanceof LintError && e.code === 'PF_LINT_UNSUPPORTED_FILE',
    );
  });
});
