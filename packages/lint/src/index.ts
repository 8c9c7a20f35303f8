// The public surface of @phaseflag/lint: lint SQL text or files, the rule list, the error class and the shapes.
// Everything else in src is internal.
import { lintChunks, settingsOf } from './analyze.js';
import { displayName, expandPaths, isSqlFile, readSql } from './files.js';
import { captureKnexMigration, withJsDirectives } from './knex-capture.js';
import type { Finding, LintOptions, LintResult } from './types.js';

export { RULES } from './rules.js';
export { checkRuleNames } from './rules.js';
export { LintError } from './errors.js';
export { DEFAULT_SMALL_TABLE, RATES_MB_PER_S } from './catalog.js';
export type {
  Finding,
  Level,
  LintCatalog,
  LintCatalogTable,
  LintOptions,
  LintResult,
  RuleInfo,
  SmallTableLimits,
} from './types.js';

/** Lints SQL text (one or many statements). Bad SQL is `PF_LINT_SYNTAX`; nothing is run. */
export async function lintSql(sql: string, options: LintOptions = {}): Promise<LintResult> {
  const settings = settingsOf(options);
  const { findings, statements } = await lintChunks(
    options.file ?? '<sql>',
    [{ sql }],
    options.assumeInTransaction ?? false,
    settings,
  );
  return { findings, statements, files: 0 };
}

/**
 * Lints files: `.sql` files and knex migration files (`.js`, `.mjs`, `.cjs`, `.ts`: the SQL their `up` would send),
 * a directory as every such file under it. Each file is linted on its own (tables created in one file are not
 * known to the next). A knex migration runs in a transaction unless it exports `config = { transaction: false }`;
 * a `.sql` file as `assumeInTransaction` says.
 */
export async function lintFiles(paths: readonly string[], options: LintOptions = {}): Promise<LintResult> {
  const settings = settingsOf(options);
  const files = expandPaths(paths);
  const findings: Finding[] = [];
  let statements = 0;
  for (const path of files) {
    const name = displayName(path);
    const result = isSqlFile(path)
      ? await lintChunks(name, [{ sql: readSql(path) }], options.assumeInTransaction ?? false, settings)
      : await lintKnex(path, name, settings);
    findings.push(...result.findings);
    statements += result.statements;
  }
  return { findings, statements, files: files.length };
}

async function lintKnex(path: string, name: string, settings: ReturnType<typeof settingsOf>) {
  const { chunks, inTransaction } = await captureKnexMigration(path);
  return lintChunks(name, withJsDirectives(readSql(path), chunks), inTransaction, settings);
}

/**
 * The SQL a knex migration's `up` would send, captured as `lintFiles` captures it (a knex that records each query and
 * runs nothing): one element per query knex would send, and whether knex's migrator would wrap them in a transaction.
 * For feeding another tool the same SQL (the benchmark gives it to squawk).
 */
export async function captureKnexSql(path: string): Promise<{ queries: string[]; inTransaction: boolean }> {
  const { chunks, inTransaction } = await captureKnexMigration(path);
  return { queries: chunks.map((c) => c.sql), inTransaction };
}
