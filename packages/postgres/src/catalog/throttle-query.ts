import { quoteIdent, ValidationError } from '@phaseflag/core';
import type { Knex } from 'knex';
import { pgError } from '../sql/pg-error.js';
import { expressionShapeProblem, forKnex } from '../sql/text.js';

/**
 * The user's throttle query (gh-ost's --throttle-query): exactly one read-only statement that returns one boolean
 * column, true meaning "hold back now". It is checked three times, each time by something stricter than the last:
 *
 *   shape      here, before anything runs      one statement: no `;` outside strings and comments (a single
 *                                              trailing `;` is tolerated), balanced parentheses
 *   plan       a temporary view in a           Postgres parses it as one SELECT (no DML, no DDL, no second
 *              rolled-back transaction          statement) and it returns one boolean column
 *   run        a connection of its own,        READ ONLY transaction with a statement_timeout, always rolled back;
 *              never the lock holder's          sent with the extended protocol, which runs one statement only
 *
 * So `SELECT false; DROP TABLE x` is refused before anything runs, and `pg_advisory_unlock_all()` inside the query
 * can only free locks of the throttle's own connection, which holds none (the runner's lock lives on another).
 */
export const THROTTLE_STATEMENT_TIMEOUT_MS = 5000;

const HINT =
  'Give one read-only SELECT that returns one row with one boolean column, true meaning "hold back now", e.g. ' +
  '"SELECT count(*) > 50 FROM pg_stat_activity WHERE state = \'active\'".';

function refuse(query: string, migrationId: string | undefined, problem: string, cause?: unknown): never {
  throw new ValidationError(
    'PF_INVALID_OPTIONS',
    `The throttle query${migrationId ? ` of "${migrationId}"` : ''} is refused: ${problem}.`,
    {
      value: query,
      migrationId,
      hint: HINT,
      cause,
    },
  );
}

/** The query as it is sent: one trailing `;` removed, the rest checked to be one statement. */
export function throttleStatement(query: string, migrationId?: string): string {
  const text = query.replace(/;\s*$/, '');
  const problem = expressionShapeProblem(text);
  if (problem !== null)
    refuse(query, migrationId, problem.replace('one expression, not statements', 'one statement, not several'));
  return text;
}

/**
 * Lets Postgres judge the query without running it, inside the caller's transaction (which the caller rolls back):
 * a view accepts one SELECT only, and its columns say what the query returns.
 */
export async function probeThrottleQuery(trx: Knex.Transaction, query: string, migrationId?: string): Promise<void> {
  const text = throttleStatement(query, migrationId);
  const view = 'pf_probe_throttle';
  await trx.raw('SAVEPOINT pf_probe_throttle');
  try {
    await trx.raw(forKnex(`CREATE TEMP VIEW ${quoteIdent(view)} AS\n${text}\n`));
  } catch (e) {
    await trx.raw('ROLLBACK TO SAVEPOINT pf_probe_throttle');
    refuse(query, migrationId, `it is not one SELECT Postgres accepts (${pgError(e).message})`, e);
  }
  const columns = (
    await trx.raw(
      `SELECT a.attname::text AS name, format_type(a.atttypid, a.atttypmod) AS type FROM pg_attribute a
      WHERE a.attrelid = ?::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
      [`pg_temp.${quoteIdent(view)}`],
    )
  ).rows as { name: string; type: string }[];
  await trx.raw('ROLLBACK TO SAVEPOINT pf_probe_throttle');
  if (columns.length !== 1 || columns[0]!.type !== 'boolean') {
    refuse(
      query,
      migrationId,
      `it returns ${columns.map((c) => `${c.name} ${c.type}`).join(', ') || 'no column'}, not one boolean column`,
    );
  }
}
