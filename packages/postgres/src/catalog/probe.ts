import { quoteIdent } from '@phaseflag/core';
import { pgError, SQLSTATE } from '../sql/pg-error.js';
import { embed, expressionValue, forKnex } from '../sql/text.js';
import { dependencyFacts } from './dependencies.js';
import { copyName, copyRegclass, probeName, type ProbeSite } from './probe-site.js';
import { refuseFunctions, refuseTimeOrSession } from './purity.js';

/**
 * Expression analysis without evaluating anything over the table's rows. The probes run inside a transaction the
 * caller always rolls back, over `pg_temp.<table>`: an empty temporary copy of the table's row type (CREATE TEMP
 * TABLE … (LIKE …)) to which the new column is added when it does not exist yet. Giving the copy the table's own
 * name means an expression may qualify columns the way it will be able to in the UPDATE and the trigger
 * ("orders.amount"), and the reverse expression can name the new column before expand has created it.
 *
 * Postgres then does the analysis a hand-written parser could only approximate:
 * - `EXPLAIN INSERT INTO copy (target) SELECT (<expr>) FROM copy` parses and resolves every name and applies the
 *   assignment coercion the backfill's UPDATE will apply (an explicit `::` cast would accept more);
 * - a throw-away view over the copy records in pg_depend exactly which columns, functions and operators the
 *   expression uses, and its stored rule tree shows any sublink (subquery);
 * - a CHECK is added to the copy as a real constraint, so Postgres applies its own rules for constraints.
 */

export interface ExpressionFacts {
  /** The row's columns the expression reads, by name. */
  readonly inputs: string[];
  /**
   * Objects outside the built-in catalog it uses (user functions, operators, types, extensions), as
   * pg_describe_object names them. pg_depend records exactly these: dependencies on built-in objects are not kept.
   */
  readonly external: string[];
}

/**
 * The backfill, verify, the router and the trigger each evaluate the expression under their own alias for the row
 * (`t`, `pf_row`, …), so an accepted expression must not depend on one: it is parsed under two different aliases
 * and a qualified reference ("t.amount", "orders.amount") fails one of them.
 */
export const PROBE_ALIASES = ['t', 'pf_row'] as const;

export async function analyseExpression(
  site: ProbeSite,
  what: 'backfill' | 'reverse',
  expression: string,
  target: string,
  targetType: string,
): Promise<ExpressionFacts> {
  const { trx, fail, table } = site;
  const copy = copyName(site);
  const invalid = (message: string, byPostgres = true): never =>
    fail(
      'PF_INVALID_EXPRESSION',
      `The ${what} expression of "${site.migrationId}" is ${byPostgres ? 'rejected by Postgres' : 'refused'}: ${message}.`,
      expression,
      `Write one SQL expression over the columns of "${table}", unqualified, that casts to ${targetType} (column "${target}"), e.g. "round(amount * 100)".`,
    );

  // The same explicit cast the backfill's UPDATE and verify apply (`(<expr>)::<type>`), so what passes here is
  // what they will run; EXPLAIN plans it without evaluating anything.
  const [first, second] = PROBE_ALIASES;
  const explain = `EXPLAIN (COSTS OFF) SELECT ${expressionValue(expression, targetType)} FROM ${copy} AS ${first}`;
  try {
    await trx.raw(forKnex(explain));
  } catch (e) {
    invalid(pgError(e, explain).message);
  }
  const view = probeName(`pf_probe_${what}`, table);
  const create = `CREATE TEMP VIEW ${quoteIdent(view)} AS SELECT ${expressionValue(expression, targetType)} AS v FROM ${copy} AS ${second}`;
  try {
    await trx.raw(forKnex(create));
  } catch (e) {
    invalid(
      `${pgError(e, create).message} (refer to the row's columns by their bare names: the row is aliased differently where the expression runs)`,
    );
  }
  const facts = await dependencyFacts(
    site,
    'pg_rewrite',
    trx.raw('(SELECT oid FROM pg_rewrite WHERE ev_class = ?::regclass)', [`pg_temp.${quoteIdent(view)}`]),
    copyRegclass(site),
  );

  if (facts.subquery) {
    fail(
      'PF_SUBQUERY_EXPRESSION',
      `The ${what} expression of "${site.migrationId}" holds a subquery.`,
      expression,
      'A subquery reads other rows or tables, which can change under the backfill and differ between trigger and verify: derive the value from the row alone.',
    );
  }
  refuseFunctions(site, what, expression, facts);
  await refuseTimeOrSession(site, what, expression, targetType, facts);
  if (facts.systemColumn) {
    invalid(
      "it reads a system column (ctid, xmin, tableoid, …), which is not part of the row's values and changes on every write",
      false,
    );
  }

  const inputs = facts.wholeRow ? site.columns.filter((c) => c !== target) : (facts.inputs ?? []);
  if (what === 'backfill' && inputs.includes(target)) {
    invalid(`it reads "${target}", the column it computes (verify would compare the column with itself)`, false);
  }
  return { inputs: [...inputs].sort(), external: (facts.external ?? []).sort() };
}

export async function analyseCheck(site: ProbeSite, expression: string): Promise<void> {
  const { trx, fail } = site;
  const copy = copyName(site);
  const name = probeName('pf_probe_check', site.table);
  const sql = `ALTER TABLE ${copy} ADD CONSTRAINT ${quoteIdent(name)} CHECK ${embed(expression)}`;
  try {
    await trx.raw(forKnex(sql));
  } catch (e) {
    const pg = pgError(e, sql);
    if (pg.code === SQLSTATE.featureNotSupported && /subquer/i.test(pg.message)) {
      fail(
        'PF_SUBQUERY_EXPRESSION',
        `The check expression of "${site.migrationId}" holds a subquery.`,
        expression,
        'A CHECK constraint sees one row: compare the row\'s own columns (e.g. "amount_cents >= 0").',
      );
    }
    fail(
      'PF_INVALID_EXPRESSION',
      `The check expression of "${site.migrationId}" is rejected by Postgres: ${pg.message}.`,
      expression,
      `Write a boolean SQL expression over the columns of "${site.table}", e.g. "amount_cents >= 0".`,
    );
  }
  const facts = await dependencyFacts(
    site,
    'pg_constraint',
    trx.raw('(SELECT oid FROM pg_constraint WHERE conrelid = ?::regclass AND conname = ?)', [copyRegclass(site), name]),
    copyRegclass(site),
  );
  refuseFunctions(site, 'check', expression, facts);
  await refuseTimeOrSession(site, 'check', expression, 'boolean', facts);
}
