import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { checkRuleNames, lintFiles, lintSql, RULES, type LintCatalog, type LintResult } from '@phaseflag/lint';
import type { Migration } from '@phaseflag/core';
import { describeTables, type MigrationHandle } from '@phaseflag/postgres';
import type { Knex } from 'knex';
import { CONFIG_FILES, loadConfig, type LintConfig, type LoadedConfig } from './config.js';

/** What a lint run takes: the files, the config's lint section, and what the command line adds to it. */
export interface LintRunInput {
  paths: readonly string[];
  config: LintConfig;
  /** Rules to leave out on top of the config's (`--exclude`). */
  exclude?: readonly string[];
  /** Only these rules (`--rule`): every other one is left out. */
  only?: readonly string[];
  assumeInTransaction?: boolean;
  pgVersion?: number;
  /** A database to read the catalog from: table sizes, column types, the server's version. */
  knex?: Knex;
  /** Declared migrations whose plans are linted as well (needs `knex`'s database: plans read the catalog). */
  migrations?: ReadonlyArray<{ migration: Migration; handle: MigrationHandle }>;
}

/** The config for `lint`: the given file, else the one in the working directory, else none at all (lint needs none). */
export async function loadLintConfig(file: string | undefined, cwd = process.cwd()): Promise<LoadedConfig | undefined> {
  if (!file && !CONFIG_FILES.some((f) => existsSync(resolve(cwd, f)))) return undefined;
  return loadConfig(file, cwd, { migrationsOptional: true });
}

/**
 * Lints files (and declared migrations' plans) with a config's lint section: the one function `phaseflag lint`
 * and `phaseflag check` call. Bad input throws a LintError (PF_LINT_*) before anything is reported.
 */
export async function runLint(input: LintRunInput): Promise<LintResult> {
  checkRuleNames(input.config.exclude ?? [], "The config's lint.exclude");
  checkRuleNames(input.exclude ?? [], '--exclude');
  checkRuleNames(input.only ?? [], '--rule');
  const only = new Set(input.only ?? []);
  const exclude = [
    ...(input.config.exclude ?? []),
    ...(input.exclude ?? []),
    ...(only.size > 0 ? RULES.map((r) => r.name).filter((r) => !only.has(r)) : []),
  ];
  const catalog: LintCatalog | undefined = input.knex ? await describeTables(input.knex) : undefined;
  const options = {
    exclude,
    assumeInTransaction: input.assumeInTransaction ?? input.config.assumeInTransaction ?? false,
    ...((input.pgVersion ?? input.config.pgVersion) ? { pgVersion: input.pgVersion ?? input.config.pgVersion } : {}),
    ...(catalog ? { catalog } : {}),
    ...(input.config.smallTable ? { smallTable: input.config.smallTable } : {}),
  };
  const result =
    input.paths.length > 0 ? await lintFiles(input.paths, options) : { findings: [], statements: 0, files: 0 };
  for (const { migration, handle } of input.migrations ?? []) {
    const planned = await lintSql(await planSql(handle), { ...options, file: `migration ${migration.id} (plan)` });
    result.findings.push(...planned.findings);
    result.statements += planned.statements;
  }
  return result;
}

/**
 * The findings phaseflag's own plans give, and why each is safe where phaseflag runs it; lint reads the plan with
 * an ignore comment for exactly these (step, rule) pairs, so any other finding in a plan is reported.
 */
export const PLAN_JUSTIFICATIONS: ReadonlyArray<{ step: string; rule: string; why: string }> = [
  {
    step: 'drop-not-null',
    rule: 'ban-drop-not-null',
    why: "contract drops the old column's NOT NULL only once every reader has moved to the new column (its guard) and the application writes the new one only; the old constraint would make those inserts fail",
  },
  {
    step: 'drop-new-column',
    rule: 'ban-drop-column',
    why: 'rollback drops only the column this migration added, after moving the phase back, so no request reads or writes it (the read rule reads the old column in every phase but read-new)',
  },
];

/**
 * A migration's plan as the engine runs it: each transactional statement in its own transaction with
 * SET LOCAL lock_timeout, each CONCURRENTLY statement on its own with the session's lock_timeout.
 */
export async function planSql(handle: MigrationHandle): Promise<string> {
  const plan = await handle.plan();
  const parts: string[] = [];
  for (const phase of plan.phases) {
    // The backfill's batches and verify's reads take no lock that blocks the application (ROW EXCLUSIVE, ACCESS
    // SHARE) and are shown with placeholders for their key ranges: the DDL is what lint judges.
    for (const s of phase.statements.filter((x) => !['NONE', 'ACCESS SHARE', 'ROW EXCLUSIVE'].includes(x.lock))) {
      const timeout = `${plan.ddl.lockTimeoutMs}ms`;
      const justified = PLAN_JUSTIFICATIONS.filter((j) => j.step === s.step).map(
        (j) => `-- phaseflag-lint-ignore ${j.rule}\n`,
      );
      const sql = `${justified.join('')}${s.sql}`;
      parts.push(
        s.transactional
          ? `BEGIN;\nSET LOCAL lock_timeout = '${timeout}';\n${sql};\nCOMMIT;`
          : `SET lock_timeout = '${timeout}';\n${sql};\nRESET lock_timeout;`,
      );
    }
  }
  return parts.join('\n');
}
