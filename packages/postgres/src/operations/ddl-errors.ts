import { DdlFailedError, LockTimeoutError, type DdlSettings } from '@phaseflag/core';
import type { ExecutorContext } from '../context.js';
import { SQLSTATE, type PgErrorFacts } from '../sql/pg-error.js';
import { regclassText } from '../sql/text.js';
import { letsApplicationThrough, lockTimeoutFor, maxLockWait, type PlannedStatement } from './planned-statement.js';

/**
 * The errors runDdl gives up with: which statement, why it did not happen, and what to do next. Each names the
 * migration and the DDL settings the statement ran with.
 */
interface DdlRun {
  readonly migrationId: string;
  readonly ddl: DdlSettings;
}

/**
 * After lock timeouts, an abort is reported as the lock timeout it cut short (the caller learns why the DDL did
 * not happen); before any, as the signal's own reason.
 */
export function aborted(
  signal: AbortSignal,
  stmt: PlannedStatement,
  opts: DdlRun,
  lockTimeouts: number,
  cause?: unknown,
): Error {
  if (lockTimeouts > 0) {
    return new LockTimeoutError(
      `${stmt.description}: stopped after ${lockTimeouts} lock timeout(s) because the run was aborted.`,
      {
        attempts: lockTimeouts,
        value: { statement: stmt.sql },
        migrationId: opts.migrationId,
        cause,
        hint: 'The unfinished statement changed nothing; run the step again when ready.',
      },
    );
  }
  return signal.reason instanceof Error
    ? signal.reason
    : Object.assign(new Error('The operation was aborted.'), { name: 'AbortError', cause: signal.reason });
}

export function ddlFailed(stmt: PlannedStatement, opts: DdlRun, pg: PgErrorFacts, cause: unknown): DdlFailedError {
  const timedOut = pg.code === SQLSTATE.queryCanceled;
  return new DdlFailedError(`${stmt.description} failed: ${pg.message}${pg.detail ? ` (${pg.detail})` : ''}.`, {
    value: { statement: stmt.sql, sqlstate: pg.code },
    migrationId: opts.migrationId,
    cause,
    hint: timedOut
      ? `The statement ran longer than statement_timeout (${opts.ddl.statementTimeoutMs} ms): raise ddl.statementTimeoutMs, or set it to 0 for no limit.`
      : 'The statement was rolled back (or, if CONCURRENTLY, left an invalid index that the next run rebuilds): fix the cause and run the step again; it resumes where it stopped.',
  });
}

interface Blocker {
  pid: number;
  state: string | null;
  ageMs: number | null;
  query: string | null;
}

export async function lockTimeout(
  ctx: ExecutorContext,
  stmt: PlannedStatement,
  opts: DdlRun,
  attempts: number,
  cause: unknown,
  /** Set when the budget ran out while the statement held back, without queueing, behind a long transaction. */
  heldBackMs?: number,
): Promise<LockTimeoutError> {
  const blockers = await findBlockers(ctx, stmt).catch((e) => {
    ctx.logger.debug('could not list blocking sessions', { error: String(e) });
    return [] as Blocker[];
  });
  const first = blockers[0];
  const who = first
    ? ` The oldest transaction holding a lock there is pid ${first.pid} (${first.state ?? 'unknown state'}${first.ageMs === null ? '' : `, open ${Math.round(first.ageMs / 1000)} s`}): ${first.query ?? '<no query text>'}.`
    : '';
  const why =
    heldBackMs === undefined
      ? `could not take ${stmt.lock} within lock_timeout (${lockTimeoutFor(stmt.lock, opts.ddl)} ms) in ${attempts} attempt(s)`
      : `could not take ${stmt.lock} within its lock wait budget (${maxLockWait(stmt.lock, opts.ddl)} ms, lock_timeout × maxAttempts): it held back ${Math.round(heldBackMs)} ms without queueing behind a transaction open longer than ddl.longTransactionMs, after ${attempts} attempt(s)`;
  return new LockTimeoutError(`${stmt.description}: ${why}.${who}`, {
    attempts,
    value: { statement: stmt.sql, blockers },
    migrationId: opts.migrationId,
    cause,
    hint: `A long-running transaction holds the table: end it (or wait for it), then run the step again; raise ddl.maxAttempts or ddl.${letsApplicationThrough(stmt.lock) ? 'nonBlockingLockTimeoutMs' : 'lockTimeoutMs'} to keep trying longer.`,
  });
}

/**
 * Sessions whose transactions the statement waited behind, oldest first: those holding a lock on the table, or
 * (for CONCURRENTLY builds, which wait for every older transaction) the oldest open transactions in the database.
 */
async function findBlockers(ctx: ExecutorContext, stmt: PlannedStatement): Promise<Blocker[]> {
  const onTable = stmt.table !== undefined && stmt.transactional;
  const rows = (
    await ctx.knex.raw(
      `SELECT a.pid, a.state, (extract(epoch FROM now() - a.xact_start) * 1000)::bigint AS "ageMs", left(a.query, 300) AS query
       FROM pg_stat_activity a
      WHERE a.pid <> pg_backend_pid() AND a.datname = current_database() AND a.xact_start IS NOT NULL
        AND (NOT ? OR a.pid IN (SELECT l.pid FROM pg_locks l WHERE l.granted AND l.relation = to_regclass(?)))
      ORDER BY a.xact_start LIMIT 3`,
      [onTable, stmt.table ? regclassText(stmt.table.schema, stmt.table.name) : ''],
    )
  ).rows as { pid: number; state: string | null; ageMs: string | null; query: string | null }[];
  return rows.map((r) => ({
    pid: r.pid,
    state: r.state,
    ageMs: r.ageMs === null ? null : Number(r.ageMs),
    query: r.query,
  }));
}
