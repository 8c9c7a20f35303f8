/**
 * Case 10 (issue 14): `phaseflag lint` against squawk on the project's corpus (bench/lint-corpus). Both tools read
 * the same files with the same PostgreSQL version; knex migrations reach squawk as the SQL phaseflag's capture of
 * their `up` produced, with --assume-in-transaction where knex wraps them in one. The catalog-aware entries run on
 * tables built here (a large one, a small one); phaseflag gets the live catalog for them, squawk cannot use one.
 */
import { performance } from 'node:perf_hooks';
import { lintFiles, RULES, type LintCatalog } from '@phaseflag/lint';
import { describeTables } from '@phaseflag/postgres';
import { loadCorpus, type CorpusEntry } from '../lint-corpus/load.js';
import type { BenchContext } from '../lib/context.js';
import { captureKnexSql } from './lint-capture.js';
import { coverage, judge, tally, type JudgedEntry, type LintTally, type ToolFinding } from './lint-judge.js';
import { runSquawk, squawkVersion, type SquawkFinding, type SquawkInput } from './lint-squawk.js';

export interface LintCase {
  squawkVersion: string;
  phaseflagVersion: string;
  /** The catalog-aware tables as the catalog described them. */
  tables: { name: string; rows: number; rowsEstimate: number; totalBytes: number }[];
  buildSeconds: number;
  /** Wall time of each tool over the whole corpus (squawk: one process per group of options). */
  phaseflagSeconds: number;
  squawkSeconds: number;
  /** Statements phaseflag read over the corpus. */
  statements: number;
  rules: { name: string; level: string; squawk?: string }[];
  coverage: { rule: string; missing: string[] }[];
  judged: JudgedEntry[];
  tally: LintTally;
}

/** The large table of the catalog-aware cases: a few hundred thousand rows, well past the small-table limits. */
export const LARGE_ROWS = 300_000;
export const SMALL_ROWS = 100;
/**
 * The timeout rules fire on nearly every DDL statement; both tools judge them on their own entries only, so that
 * every other entry measures the one hazard it is about. squawk 2.66 (whose config calls the pair
 * require-timeout-settings) reports require-lock-timeout, phaseflag's rule of that name (RULES[].squawk), and
 * require-statement-timeout, which phaseflag has no rule for: listed, not counted.
 */
const TIMEOUT_RULE = 'require-lock-timeout';
const SQUAWK_TIMEOUT_RULES = ['require-lock-timeout', 'require-statement-timeout'];

export async function runLintComparison(ctx: BenchContext): Promise<LintCase> {
  const corpus = loadCorpus();
  const builtAt = performance.now();
  const catalog = await buildCatalogTables(ctx);
  const buildSeconds = (performance.now() - builtAt) / 1000;
  ctx.log(`lint: ${corpus.length} corpus entries; catalog tables built in ${buildSeconds.toFixed(1)} s`);

  const listedOf = squawkToPhaseflag();
  const phaseflag = new Map<string, ToolFinding[]>();
  let statements = 0;
  const pfStarted = performance.now();
  for (const e of corpus) {
    const result = await lintFiles([e.path], {
      pgVersion: e.pgVersion,
      exclude: e.rule === TIMEOUT_RULE ? [] : [TIMEOUT_RULE],
      ...(e.catalog ? { catalog } : {}),
    });
    statements += result.statements;
    phaseflag.set(
      e.id,
      result.findings.map((f) => ({
        rule: f.rule,
        listed: [f.rule],
        level: f.level,
        line: f.line,
        message: f.message,
      })),
    );
  }
  const phaseflagSeconds = (performance.now() - pfStarted) / 1000;

  const captured = new Map<string, string>();
  for (const e of corpus) if (e.form === 'knex') captured.set(e.id, await captureKnexSql(e.path));
  const squawk = new Map<string, SquawkFinding[]>();
  const sqStarted = performance.now();
  for (const group of squawkGroups(corpus)) {
    const inputs: SquawkInput[] = group.entries.map((e) =>
      e.form === 'knex' ? { key: e.id, sql: captured.get(e.id)! } : { key: e.id, path: e.path },
    );
    for (const [key, findings] of await runSquawk(inputs, group.options)) squawk.set(key, findings);
  }
  const squawkSeconds = (performance.now() - sqStarted) / 1000;

  const judged = corpus.map((e) =>
    judge(
      e,
      phaseflag.get(e.id)!,
      squawk.get(e.id)!.map((f) => ({
        rule: f.rule,
        listed: listedOf.get(f.rule) ?? [],
        level: f.level.toLowerCase(),
        line: f.line,
        message: f.message,
      })),
      captured.get(e.id),
    ),
  );
  return {
    squawkVersion: await squawkVersion(),
    phaseflagVersion: await lintVersion(),
    tables: catalog.tables.map((t) => ({
      name: t.name,
      rows: t.name === 'audit_events' ? LARGE_ROWS : SMALL_ROWS,
      rowsEstimate: t.rowsEstimate,
      totalBytes: t.totalBytes,
    })),
    buildSeconds,
    phaseflagSeconds,
    squawkSeconds,
    statements,
    rules: RULES.map((r) => ({ name: r.name, level: r.level, ...(r.squawk ? { squawk: r.squawk } : {}) })),
    coverage: coverage(
      corpus,
      RULES.map((r) => r.name),
    ),
    judged,
    tally: tally(judged),
  };
}

/** squawk's rule names (as it reports them) → the phaseflag rules that name them as squawk's. */
function squawkToPhaseflag(): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const rule of RULES) {
    if (rule.squawk) map.set(rule.squawk, [...(map.get(rule.squawk) ?? []), rule.name]);
  }
  return map;
}

/** squawk takes its options per run: one run per PG version × transaction × timeout rules on or off. */
function squawkGroups(corpus: readonly CorpusEntry[]) {
  const groups = new Map<string, { options: Parameters<typeof runSquawk>[1]; entries: CorpusEntry[] }>();
  for (const e of corpus) {
    const assumeInTransaction = e.form === 'knex' && e.inTransaction;
    const timeouts = e.rule === TIMEOUT_RULE;
    const key = `${e.pgVersion}|${assumeInTransaction}|${timeouts}`;
    if (!groups.has(key))
      groups.set(key, {
        options: { pgVersion: e.pgVersion, assumeInTransaction, exclude: timeouts ? [] : SQUAWK_TIMEOUT_RULES },
        entries: [],
      });
    groups.get(key)!.entries.push(e);
  }
  return [...groups.values()];
}

/** The catalog-aware tables, in the bench's own database: built with generate_series, ANALYZEd, then described. */
async function buildCatalogTables(ctx: BenchContext): Promise<LintCatalog> {
  const k = ctx.admin;
  for (const [table, rows] of [
    ['audit_events', LARGE_ROWS],
    ['feature_settings', SMALL_ROWS],
  ] as const) {
    await k.raw('DROP TABLE IF EXISTS ??', [table]);
    await k.raw(
      'CREATE TABLE ?? (id bigint PRIMARY KEY, account_id bigint, kind text, amount bigint, note text, code varchar(20))',
      [table],
    );
    await k.raw(
      `INSERT INTO ?? SELECT g, g % 5000, CASE WHEN g % 3 = 0 THEN 'refund' ELSE 'charge' END, g * 7 % 100000,
              md5(g::text), left(md5(g::text), 12)
         FROM generate_series(1, ?) g`,
      [table, rows],
    );
    await k.raw('ANALYZE ??', [table]);
  }
  return describeTables(k, ['audit_events', 'feature_settings']);
}

async function lintVersion(): Promise<string> {
  const { createRequire } = await import('node:module');
  const pkg = createRequire(import.meta.url)('@phaseflag/lint/package.json') as { version: string };
  return pkg.version;
}
