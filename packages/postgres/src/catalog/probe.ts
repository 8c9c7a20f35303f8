import { CatalogError, quoteIdent, type ErrorCodeOf } from '@phaseflag/core';
import type { Knex } from 'knex';
import { pgError, SQLSTATE } from '../sql/pg-error.js';
import { embed, expressionValue, forKnex } from '../sql/text.js';

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
export type Fail = (code: ErrorCodeOf<'CatalogError'>, message: string, value: unknown, hint: string) => never;

export interface ProbeSite {
  readonly trx: Knex.Transaction;
  readonly migrationId: string;
  /** The table's name, which is also the name of its copy in pg_temp. */
  readonly table: string;
  /** Every column of the copy (the table's columns plus the new one). */
  readonly columns: readonly string[];
  /** The session's search_path setting, restored after the analysis queries that run with pg_catalog alone. */
  readonly searchPath: string;
  readonly fail: Fail;
}

interface DependencyFacts {
  inputs: string[] | null;
  subquery: boolean;
  wholeRow: boolean;
  systemColumn: boolean;
  external: string[] | null;
  /** current_user, current_timestamp, …: SQL value functions, which are not calls in the tree. */
  sqlValueFunction: boolean;
  /** The tree produces or reads a value of an enum type (whose text input and output Postgres marks STABLE). */
  enumType: boolean;
  functions: { name: string; volatility: 'i' | 's' | 'v'; kind: string; returnsSet: boolean }[] | null;
}

export interface ExpressionFacts {
  /** The row's columns the expression reads, by name. */
  readonly inputs: string[];
  /**
   * Objects outside the built-in catalog it uses (user functions, operators, types, extensions), as
   * pg_describe_object names them. pg_depend records exactly these: dependencies on built-in objects are not kept.
   */
  readonly external: string[];
}

/** A name for a probe object in pg_temp that cannot be the copy of the user's table. */
export function probeName(base: string, table: string): string {
  return base === table ? `${base}_` : base;
}

export function copyName(site: Pick<ProbeSite, 'table'>): string {
  return `pg_temp.${quoteIdent(site.table)}`;
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
    copy,
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
    trx.raw('(SELECT oid FROM pg_constraint WHERE conrelid = ?::regclass AND conname = ?)', [copy, name]),
    copy,
  );
  refuseFunctions(site, 'check', expression, facts);
  await refuseTimeOrSession(site, 'check', expression, 'boolean', facts);
}

function refuseFunctions(site: ProbeSite, what: string, expression: string, facts: DependencyFacts): void {
  const fns = facts.functions ?? [];
  const grouped = fns.filter((f) => f.kind === 'a' || f.kind === 'w');
  if (grouped.length > 0) {
    site.fail(
      'PF_INVALID_EXPRESSION',
      `The ${what} expression of "${site.migrationId}" uses aggregate or window function(s) ${grouped.map((f) => f.name).join(', ')}.`,
      expression,
      'The value must come from the row alone; aggregates and window functions combine several rows.',
    );
  }
  const sets = fns.filter((f) => f.returnsSet);
  if (sets.length > 0) {
    site.fail(
      'PF_INVALID_EXPRESSION',
      `The ${what} expression of "${site.migrationId}" calls set-returning function(s) ${sets.map((f) => f.name).join(', ')}.`,
      expression,
      'One row must give one value: use a scalar function.',
    );
  }
  const volatile = fns.filter((f) => f.volatility === 'v');
  if (volatile.length > 0) {
    site.fail(
      'PF_VOLATILE_EXPRESSION',
      `The ${what} expression of "${site.migrationId}" calls volatile function(s) ${volatile.map((f) => f.name).join(', ')}.`,
      expression,
      'A volatile value differs each time it is computed, so backfill, trigger and verify would disagree: derive the value from the row alone with immutable functions.',
    );
  }
  const stable = fns.filter((f) => f.volatility === 's');
  if (stable.length > 0) {
    site.fail(
      'PF_VOLATILE_EXPRESSION',
      `The ${what} expression of "${site.migrationId}" depends on time or session: it calls stable function(s) ${stable.map((f) => f.name).join(', ')}.`,
      expression,
      TIME_OR_SESSION_HINT,
    );
  }
}

const TIME_OR_SESSION_HINT =
  'A stable function may return another value at another moment or in another session (now(), the TimeZone, DateStyle, the current user), so the backfill, the trigger and verify would disagree: ' +
  "pass the moment as a constant (e.g. '2026-01-01 00:00+00'::timestamptz), convert with an explicit time zone (AT TIME ZONE 'UTC'), or mark a function that truly depends on its arguments alone IMMUTABLE.";

/**
 * Postgres's own verdict on whether the expression depends on nothing but the row: a generated column accepts
 * only an immutable expression, and it sees what the function list cannot, i.e. casts through a type's text
 * input or output (text → timestamptz reads TimeZone and DateStyle) and SQL value functions (current_user,
 * current_timestamp), which are not function calls in the tree. The column is added to the empty copy under a
 * savepoint; a refusal for any other reason (a whole-row reference, which a generated column may not hold) leaves
 * the decision to the function list.
 *
 * One exception: an enum's text input and output are STABLE (they read pg_enum), not dependent on time or session,
 * and `CASE … THEN 'sad' END` into an enum column is an ordinary backfill. For an expression that touches an enum
 * type the verdict comes from the tree alone: the function list (refuseFunctions) and SQL value functions.
 */
async function refuseTimeOrSession(
  site: ProbeSite,
  what: string,
  expression: string,
  type: string,
  facts: DependencyFacts,
): Promise<void> {
  const { trx } = site;
  if (facts.sqlValueFunction) {
    site.fail(
      'PF_VOLATILE_EXPRESSION',
      `The ${what} expression of "${site.migrationId}" depends on time or session: it reads current_user, current_timestamp or a similar SQL value function.`,
      expression,
      TIME_OR_SESSION_HINT,
    );
  }
  if (facts.enumType) return;
  const column = quoteIdent(probeName('pf_probe_immutable', site.table));
  const sql = `ALTER TABLE ${copyName(site)} ADD COLUMN ${column} ${type} GENERATED ALWAYS AS ${expressionValue(expression, type)} STORED`;
  await trx.raw('SAVEPOINT pf_probe_immutable');
  try {
    await trx.raw(forKnex(sql));
  } catch (e) {
    await trx.raw('ROLLBACK TO SAVEPOINT pf_probe_immutable');
    const pg = pgError(e, sql);
    if (pg.code === SQLSTATE.invalidObjectDefinition && /not immutable/i.test(pg.message)) {
      site.fail(
        'PF_VOLATILE_EXPRESSION',
        `The ${what} expression of "${site.migrationId}" depends on time or session (Postgres: ${pg.message}).`,
        expression,
        TIME_OR_SESSION_HINT,
      );
    }
    return;
  }
  await trx.raw('ROLLBACK TO SAVEPOINT pf_probe_immutable');
}

/**
 * Facts about one stored expression: a view's rewrite rule or a constraint. pg_depend gives the copy's columns it
 * reads (the copy is an ordinary object, so its columns are recorded). Functions cannot come from pg_depend:
 * dependencies on built-in ("pinned") objects are never recorded, so random() or now() would be invisible. They
 * are read from the stored node tree instead, where every call names its function (`:funcid`, `:opfuncid`,
 * `:aggfnoid`, `:winfnoid`) or its operator (`:opno`); the tree also shows sublinks and whole-row references.
 */
async function dependencyFacts(
  site: ProbeSite,
  catalog: 'pg_rewrite' | 'pg_constraint',
  objid: Knex.Raw,
  copy: string,
): Promise<DependencyFacts> {
  const { trx } = site;
  const tree =
    catalog === 'pg_rewrite'
      ? 'SELECT ev_action::text FROM pg_rewrite WHERE oid = (SELECT objid FROM obj)'
      : 'SELECT conbin::text FROM pg_constraint WHERE oid = (SELECT objid FROM obj)';
  // With only pg_catalog on the path, pg_describe_object qualifies every other object ("function app.f(numeric)").
  await trx.raw("SELECT set_config('search_path', 'pg_catalog', true)");
  const facts = (
    await trx.raw(
      `WITH obj AS (SELECT ?::regclass AS classid, ?::oid AS objid),
          tree AS (${tree}),
          ids AS (SELECT m[1] AS kind, m[2]::oid AS oid FROM tree t(text), regexp_matches(t.text, ':(funcid|opfuncid|aggfnoid|winfnoid|opno) ([0-9]+)', 'g') AS m),
          fns AS (SELECT oid FROM ids WHERE kind <> 'opno' UNION SELECT o.oprcode FROM ids JOIN pg_operator o ON o.oid = ids.oid WHERE ids.kind = 'opno')
     SELECT
       (SELECT array_agg(DISTINCT a.attname::text) FROM pg_depend d, obj JOIN pg_attribute a ON true
         WHERE d.classid = obj.classid AND d.objid = obj.objid AND a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
           AND d.refclassid = 'pg_class'::regclass AND d.refobjid = ?::regclass AND d.refobjsubid > 0) AS inputs,
       coalesce((SELECT strpos(t.text, '{SUBLINK') > 0 FROM tree t(text)), false) AS subquery,
       coalesce((SELECT strpos(t.text, ':varattno 0 ') > 0 FROM tree t(text)), false) AS "wholeRow",
       coalesce((SELECT t.text ~ ':varattno -[0-9]' FROM tree t(text)), false) AS "systemColumn",
       coalesce((SELECT strpos(t.text, '{SQLVALUEFUNCTION') > 0 FROM tree t(text)), false) AS "sqlValueFunction",
       EXISTS (SELECT 1 FROM tree t(text), regexp_matches(t.text, ':(resulttype|consttype|vartype|funcresulttype|opresulttype|casetype|minmaxtype) ([0-9]+)', 'g') AS m
                JOIN pg_type ty ON ty.oid = m[2]::oid
               WHERE ty.typtype = 'e' OR (ty.typtype = 'd' AND (SELECT b.typtype FROM pg_type b WHERE b.oid = ty.typbasetype) = 'e')) AS "enumType",
       (SELECT array_agg(DISTINCT pg_describe_object(d.refclassid, d.refobjid, 0)) FROM pg_depend d, obj
         WHERE d.classid = obj.classid AND d.objid = obj.objid AND d.deptype = 'n'
           AND NOT (d.refclassid = 'pg_class'::regclass AND (d.refobjid = ?::regclass
                    OR d.refobjid = (SELECT ev_class FROM pg_rewrite WHERE obj.classid = 'pg_rewrite'::regclass AND oid = obj.objid)))) AS external,
       (SELECT json_agg(json_build_object('name', p.oid::regprocedure::text, 'volatility', p.provolatile, 'kind', p.prokind, 'returnsSet', p.proretset))
          FROM fns JOIN pg_proc p ON p.oid = fns.oid) AS functions`,
      [catalog, objid, copy, copy],
    )
  ).rows[0] as DependencyFacts;
  await trx.raw("SELECT set_config('search_path', ?, true)", [site.searchPath]);
  return facts;
}

/** Maps a lock_timeout met by the probes themselves (a DDL holds the table) to the error DDL would give. */
export function isLockTimeout(error: unknown): boolean {
  return !(error instanceof CatalogError) && pgError(error).code === SQLSTATE.lockNotAvailable;
}
