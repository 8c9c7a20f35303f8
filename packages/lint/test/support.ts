import { lintSql, type LintOptions } from '../src/index.js';

/** The rules reported for the SQL, in order (lock_timeout set first unless the test is about it). */
export async function rulesOf(sql: string, options: LintOptions = {}): Promise<string[]> {
  const r = await lintSql(sql, options);
  return r.findings.map((f) => f.rule);
}

/** As rulesOf, with lock_timeout set before: the rule under test alone. */
export async function only(sql: string, options: LintOptions = {}): Promise<string[]> {
  return rulesOf(`SET lock_timeout = '2s';\n${sql}`, options);
}
