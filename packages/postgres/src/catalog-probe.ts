import { CatalogError, quoteIdent, type ErrorCode } from '@phaseflag/core';
import type { Knex } from 'knex';
import { pgError, SQLSTATE } from './pg-error.js';
import { embed } from './sql-text.js';

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
export type Fail = (code: ErrorCode, message: string, value: unknown, hint: string) => never;

export interface ProbeSite {
  readonly trx: Knex.Transaction;
  readonly migrationId: string;
  /** The table's name, which is also the name of its copy in pg_temp. */
  readonly table: string;
  /** Every column of the copy (the table's columns plus the new one). */
  readonly columns: readonly string[];
  readonly fail: Fail;
}

interface DependencyFacts {
  inputs: string[] | null;
  subquery: boolean;
  wholeRow: boolean;
  functions: { name: string; volatile: boolean; kind: string; returnsSet: boolean }[] | null;
}

/** A name for a probe object in pg_temp that cannot be the copy of the user's table. */
export function probeName(base: string, table: string): string {
  return base === table ? `${base}_` : base;
}

export function copyName(site: Pick<ProbeSite, 'table'>): string {
  return `pg_temp.${quoteIdent(site.table)}`;
}

export async function analyseExpression(
  site: ProbeSite, what: 'backfill' | 'reverse', expression: string, target: string, targetType: string,
): Promise<string[]> {
  const { trx, fail, table } = site;
  const copy = copyName(site);
  const invalid = (message: string): never => fail('PF_INVALID_EXPRESSION',
    `The ${what} expression of "${site.migrationId}" is rejected by Postgres: ${message}.`, expression,
    `Write one SQL expression over the columns of "${table}" whose value can be assigned to ${targetType} (column "${target}"), e.g. "round(amount * 100)::bigint".`);

  const explain = `EXPLAIN (COSTS OFF) INSERT INTO ${copy} (${quoteIdent(target)}) SELECT ${embed(expression)} FROM ${copy} AS ${quoteIdent(table)}`;
  try {
    await trx.raw(explain);
  } catch (e) {
    invalid(pgError(e, explain).message);
  }
  const view = probeName(`pf_probe_${what}`, table);
  await trx.raw(`CREATE TEMP VIEW ${quoteIdent(view)} AS SELECT ${embed(expression)} AS v FROM ${copy} AS ${quoteIdent(table)}`);
  const facts = await dependencyFacts(trx, 'pg_rewrite',
    trx.raw('(SELECT oid FROM pg_rewrite WHERE ev_class = ?::regclass)', [`pg_temp.${quoteIdent(view)}`]), copy);

  if (facts.subquery) {
    fail('PF_SUBQUERY_EXPRESSION', `The ${what} expression of "${site.migrationId}" holds a subquery.`, expression,
      'A subquery reads other rows or tables, which can change under the backfill and differ between trigger and verify: derive the value from the row alone.');
  }
  refuseFunctions(site, what, expression, facts);

  let inputs = facts.wholeRow ? [...site.columns] : facts.inputs ?? [];
  if (what === 'backfill' && inputs.includes(target) && !facts.wholeRow) {
    invalid(`it reads "${target}", the column it computes (verify would compare the column with itself)`);
  }
  if (facts.wholeRow) inputs = inputs.filter((c) => c !== target);
  return inputs.sort();
}

export async function analyseCheck(site: ProbeSite, expression: string): Promise<void> {
  const { trx, fail } = site;
  const copy = copyName(site);
  const name = probeName('pf_probe_check', site.table);
  const sql = `ALTER TABLE ${copy} ADD CONSTRAINT ${quoteIdent(name)} CHECK ${embed(expression)}`;
  try {
    await trx.raw(sql);
  } catch (e) {
    const pg = pgError(e, sql);
    if (pg.code === SQLSTATE.featureNotSupported && /subquer/i.test(pg.message)) {
      fail('PF_SUBQUERY_EXPRESSION', `The check expression of "${site.migrationId}" holds a subquery.`, expression,
        'A CHECK constraint sees one row: compare the row\'s own columns (e.g. "amount_cents >= 0").');
    }
    fail('PF_INVALID_EXPRESSION', `The check expression of "${site.migrationId}" is rejected by Postgres: ${pg.message}.`, expression,
      `Write a boolean SQL expression over the columns of "${site.table}", e.g. "amount_cents >= 0".`);
  }
  const facts = await dependencyFacts(trx, 'pg_constraint',
    trx.raw('(SELECT oid FROM pg_constraint WHERE conrelid = ?::regclass AND conname = ?)', [copy, name]), copy);
  refuseFunctions(site, 'check', expression, facts);
}

function refuseFunctions(site: ProbeSite, what: string, expression: string, facts: DependencyFacts): void {
  const fns = facts.functions ?? [];
  const grouped = fns.filter((f) => f.kind === 'a' || f.kind === 'w');
  if (grouped.length > 0) {
    site.fail('PF_INVALID_EXPRESSION', `The ${what} expression of "${site.migrationId}" uses aggregate or window function(s) ${grouped.map((f) => f.name).join(', ')}.`, expression,
      'The value must come from the row alone; aggregates and window functions combine several rows.');
  }
  const sets = fns.filter((f) => f.returnsSet);
  if (sets.length > 0) {
    site.fail('PF_INVALID_EXPRESSION', `The ${what} expression of "${site.migrationId}" calls set-returning function(s) ${sets.map((f) => f.name).join(', ')}.`, expression,
      'One row must give one value: use a scalar function.');
  }
  const volatile = fns.filter((f) => f.volatile);
  if (volatile.length > 0) {
    site.fail('PF_VOLATILE_EXPRESSION', `The ${what} expression of "${site.migrationId}" calls volatile function(s) ${volatile.map((f) => f.name).join(', ')}.`, expression,
      'A volatile value differs each time it is computed, so backfill, trigger and verify would disagree: use an immutable or stable expression over the row.');
  }
}

/**
 * What pg_depend records for one object (a view's rewrite rule or a constraint): the copy's columns it reads,
 * the functions it calls directly or through operators, and (for rules) whether its tree holds a sublink or a
 * whole-row reference, which records no column dependency.
 */
async function dependencyFacts(trx: Knex.Transaction, catalog: 'pg_rewrite' | 'pg_constraint', objid: Knex.Raw, copy: string): Promise<DependencyFacts> {
  return (await trx.raw(
    `WITH obj AS (SELECT ?::regclass AS classid, ?::oid AS objid),
          deps AS (SELECT d.* FROM pg_depend d, obj WHERE d.classid = obj.classid AND d.objid = obj.objid),
          fns AS (
            SELECT d.refobjid AS oid FROM deps d WHERE d.refclassid = 'pg_proc'::regclass
            UNION SELECT o.oprcode FROM deps d JOIN pg_operator o ON o.oid = d.refobjid WHERE d.refclassid = 'pg_operator'::regclass)
     SELECT
       (SELECT array_agg(DISTINCT a.attname::text) FROM deps d JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
         WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = ?::regclass AND d.refobjsubid > 0) AS inputs,
       coalesce((SELECT strpos(r.ev_action::text, '{SUBLINK') > 0 FROM pg_rewrite r, obj WHERE obj.classid = 'pg_rewrite'::regclass AND r.oid = obj.objid), false) AS subquery,
       coalesce((SELECT strpos(r.ev_action::text, ':varattno 0 ') > 0 FROM pg_rewrite r, obj WHERE obj.classid = 'pg_rewrite'::regclass AND r.oid = obj.objid), false) AS "wholeRow",
       (SELECT json_agg(json_build_object('name', p.oid::regprocedure::text, 'volatile', p.provolatile = 'v', 'kind', p.prokind, 'returnsSet', p.proretset))
          FROM fns JOIN pg_proc p ON p.oid = fns.oid) AS functions`,
    [catalog, objid, copy],
  )).rows[0] as DependencyFacts;
}

/** Maps a lock_timeout met by the probes themselves (a DDL holds the table) to the error DDL would give. */
export function isLockTimeout(error: unknown): boolean {
  return !(error instanceof CatalogError) && pgError(error).code === SQLSTATE.lockNotAvailable;
}
