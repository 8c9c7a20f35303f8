import { quoteIdent } from '@phaseflag/core';
import { pgError, SQLSTATE } from '../sql/pg-error.js';
import { expressionValue, forKnex } from '../sql/text.js';
import type { DependencyFacts } from './dependencies.js';
import { copyName, probeName, type ProbeSite } from './probe-site.js';

/**
 * Whether an expression's value comes from the row alone: no aggregate, window or set-returning function, and
 * nothing that depends on time or session (volatile and stable functions, SQL value functions, casts through a
 * type's text input or output). Backfill, trigger and verify compute it at different moments in different
 * sessions; they must agree.
 */

export function refuseFunctions(site: ProbeSite, what: string, expression: string, facts: DependencyFacts): void {
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
export async function refuseTimeOrSession(
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
