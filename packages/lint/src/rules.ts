import { LintError } from './errors.js';
import type { RuleInfo } from './types.js';

/**
 * Every rule lint has, with the rule name squawk 2.66 reports for the same finding where squawk has one (so a team
 * that knows squawk recognises it; none for ban-vacuum-full and ban-cluster: squawk flags neither VACUUM FULL nor
 * CLUSTER) and the level it reports at. Error-level findings fail `phaseflag lint` (exit 1); warnings do not.
 */
export const RULES: ReadonlyArray<RuleInfo> = Object.freeze([
  {
    name: 'require-concurrent-index-creation',
    level: 'error',
    squawk: 'require-concurrent-index-creation',
    summary: 'CREATE INDEX without CONCURRENTLY blocks writes to the table while the index is built',
  },
  {
    name: 'require-concurrent-index-deletion',
    level: 'error',
    squawk: 'require-concurrent-index-deletion',
    summary: "DROP INDEX without CONCURRENTLY takes ACCESS EXCLUSIVE on the index's table",
  },
  {
    name: 'constraint-missing-not-valid',
    level: 'error',
    squawk: 'constraint-missing-not-valid',
    summary: 'a CHECK constraint added without NOT VALID scans the whole table under ACCESS EXCLUSIVE',
  },
  {
    name: 'adding-foreign-key-constraint',
    level: 'error',
    squawk: 'adding-foreign-key-constraint',
    summary: 'a foreign key added without NOT VALID scans the table and blocks writes on both tables',
  },
  {
    name: 'adding-field-with-default',
    level: 'error',
    squawk: 'adding-field-with-default',
    summary:
      'a column with a volatile default (or a stored generated column) rewrites the table under ACCESS EXCLUSIVE',
  },
  {
    name: 'changing-column-type',
    level: 'error',
    squawk: 'changing-column-type',
    summary: "changing a column's type rewrites the table under ACCESS EXCLUSIVE, except for the casts that do not",
  },
  {
    name: 'adding-not-nullable-field',
    level: 'error',
    squawk: 'adding-not-nullable-field',
    summary: 'SET NOT NULL scans the whole table under ACCESS EXCLUSIVE unless a validated CHECK proves it (PG 12+)',
  },
  {
    name: 'adding-required-field',
    level: 'error',
    squawk: 'adding-required-field',
    summary: 'a NOT NULL column without a default fails on any table that has rows',
  },
  {
    name: 'disallowed-unique-constraint',
    level: 'error',
    squawk: 'disallowed-unique-constraint',
    summary: 'a UNIQUE constraint builds its index under ACCESS EXCLUSIVE; build it CONCURRENTLY and add USING INDEX',
  },
  {
    name: 'renaming-column',
    level: 'error',
    squawk: 'renaming-column',
    summary: 'renaming a column breaks every running client that still uses the old name',
  },
  {
    name: 'renaming-table',
    level: 'error',
    squawk: 'renaming-table',
    summary: 'renaming a table breaks every running client that still uses the old name',
  },
  {
    name: 'ban-drop-column',
    level: 'error',
    squawk: 'ban-drop-column',
    summary: 'dropping a column breaks every running client that still reads or writes it',
  },
  {
    name: 'ban-drop-not-null',
    level: 'error',
    squawk: 'ban-drop-not-null',
    summary: 'dropping NOT NULL lets NULLs in that running clients do not expect',
  },
  {
    name: 'adding-serial-primary-key-field',
    level: 'error',
    squawk: 'adding-serial-primary-key-field',
    summary: 'a primary key added to an existing table builds its index under ACCESS EXCLUSIVE',
  },
  {
    name: 'require-lock-timeout',
    level: 'error',
    squawk: 'require-lock-timeout',
    summary: 'a statement that takes a blocking lock without lock_timeout queues every query behind it while it waits',
  },
  {
    name: 'ban-concurrent-index-creation-in-transaction',
    level: 'error',
    squawk: 'ban-concurrent-index-creation-in-transaction',
    summary: 'CONCURRENTLY cannot run inside a transaction block: the statement fails',
  },
  {
    name: 'validate-in-same-transaction',
    level: 'error',
    squawk: 'constraint-missing-not-valid',
    summary: 'VALIDATE CONSTRAINT in the transaction that added it NOT VALID holds ACCESS EXCLUSIVE through the scan',
  },
  {
    name: 'ban-vacuum-full',
    level: 'error',
    summary: 'VACUUM FULL rewrites the table under ACCESS EXCLUSIVE',
  },
  {
    name: 'ban-cluster',
    level: 'error',
    summary: 'CLUSTER rewrites the table under ACCESS EXCLUSIVE',
  },
  {
    name: 'require-concurrent-reindex',
    level: 'error',
    squawk: 'require-concurrent-reindex',
    summary: 'REINDEX without CONCURRENTLY blocks writes (and reads through the index) while it rebuilds',
  },
  {
    name: 'prefer-bigint-over-int',
    level: 'warning',
    squawk: 'prefer-bigint-over-int',
    summary: 'a 32-bit integer key runs out at 2 147 483 647; widening it later rewrites the table',
  },
] satisfies RuleInfo[]);

const BY_NAME = new Map(RULES.map((r) => [r.name, r]));

export function ruleInfo(name: string): RuleInfo {
  const rule = BY_NAME.get(name);
  if (!rule) throw new Error(`phaseflag lint has no rule ${name}`);
  return rule;
}

/** Checks rule names from a comment, the config or the options; an unknown one is `PF_LINT_UNKNOWN_RULE`. */
export function checkRuleNames(
  names: readonly string[],
  where: string,
  at: { file?: string; line?: number; column?: number } = {},
): void {
  for (const name of names) {
    if (BY_NAME.has(name)) continue;
    throw new LintError(
      'PF_LINT_UNKNOWN_RULE',
      `${where} names the rule "${name}", which phaseflag lint does not have.`,
      {
        value: name,
        hint: `Known rules: ${RULES.map((r) => r.name).join(', ')}.`,
        ...at,
      },
    );
  }
}
