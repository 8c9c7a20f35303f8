import type { DdlSettings } from '@phaseflag/core';
import type { ExecutorContext } from '../context.js';
import { regclassText } from '../sql/text.js';
import { toBlocker, type LockWatcher } from './ddl-lock-wait.js';
import { letsApplicationThrough, type LockMode, type PlannedStatement } from './planned-statement.js';

/** How often a held-back statement looks again, and how often it says who it waits for. */
const POLL_MS = 150;
const REPORT_EVERY_MS = 1000;

/**
 * The granted pg_locks modes each queueing lock conflicts with (Postgres's table of conflicting lock modes). A
 * request that waits blocks every later request conflicting with it: these three modes stall the application's
 * writes (SHARE, SHARE ROW EXCLUSIVE) or its reads too (ACCESS EXCLUSIVE).
 */
const CONFLICTS: Partial<Record<LockMode, readonly string[]>> = {
  SHARE: [
    'RowExclusiveLock',
    'ShareUpdateExclusiveLock',
    'ShareRowExclusiveLock',
    'ExclusiveLock',
    'AccessExclusiveLock',
  ],
  'SHARE ROW EXCLUSIVE': [
    'RowExclusiveLock',
    'ShareUpdateExclusiveLock',
    'ShareLock',
    'ShareRowExclusiveLock',
    'ExclusiveLock',
    'AccessExclusiveLock',
  ],
  'ACCESS EXCLUSIVE': [
    'AccessShareLock',
    'RowShareLock',
    'RowExclusiveLock',
    'ShareUpdateExclusiveLock',
    'ShareLock',
    'ShareRowExclusiveLock',
    'ExclusiveLock',
    'AccessExclusiveLock',
  ],
};

/**
 * Backends of this database holding, granted, a lock that conflicts with what the statement needs on one of its
 * tables (or a partition of it: LOCK TABLE and ALTER TABLE take the partitions too; pg_partition_tree lists
 * nothing for a plain table, hence the table itself beside it), in a transaction open longer
 * than $3 ms; oldest first. The look is the catalog's view at one instant: a transaction that starts right after
 * it is caught by the attempt's lock_timeout instead.
 */
const LONG_HOLDERS_SQL = `
  SELECT DISTINCT ON (a.xact_start, a.pid) a.pid, a.application_name, a.state, a.xact_start, a.query_start, a.query
    FROM unnest($1::text[], $2::text[]) AS want(rel, modes)
    CROSS JOIN LATERAL (SELECT to_regclass(want.rel) AS relid
                        UNION SELECT relid FROM pg_partition_tree(to_regclass(want.rel))) AS part
    JOIN pg_locks l ON l.locktype = 'relation' AND l.granted AND l.relation = part.relid
                   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                   AND l.mode = ANY (string_to_array(want.modes, ','))
    JOIN pg_stat_activity a ON a.pid = l.pid
   WHERE a.pid <> pg_backend_pid()
     AND a.xact_start < clock_timestamp() - make_interval(secs => $3::float8 / 1000)
   ORDER BY a.xact_start, a.pid
   LIMIT 5`;

/** The tables a statement locks in a mode that would queue the application while it waits, with that mode. */
function queueingLocks(stmt: PlannedStatement): { rel: string; modes: string }[] {
  const wanted = [
    ...(stmt.table && stmt.transactional ? [{ table: stmt.table, lock: stmt.lock as LockMode | 'ROW SHARE' }] : []),
    ...(stmt.otherLocks ?? []),
  ];
  return wanted.flatMap(({ table, lock }) => {
    const modes = lock === 'ROW SHARE' || letsApplicationThrough(lock) ? undefined : CONFLICTS[lock];
    return modes ? [{ rel: regclassText(table.schema, table.name), modes: modes.join(',') }] : [];
  });
}

export interface HeldBack {
  /** Time spent holding back (0 when no long transaction held a conflicting lock at the first look). */
  waitedMs: number;
  /** The budget ran out while a long transaction still held the table: the caller gives up with PF_LOCK_TIMEOUT. */
  exhausted: boolean;
}

/**
 * Waits WITHOUT queueing while a long transaction holds a lock that conflicts with the statement's. A queued
 * lock request stalls every application statement that arrives after it; a look at pg_locks from the watcher's
 * own connection stalls no one. So instead of attempting (and stalling the application for a whole lock_timeout
 * behind a report that will not end in time), the statement polls until the long holders are gone, saying who
 * they are as LockWatcher does, for at most `budgetMs` (what is left of lock_timeout × maxAttempts). Holders
 * younger than ddl.longTransactionMs are the application's short transactions: the attempt goes ahead behind
 * them, or it would wait forever under steady traffic. A role that may not see other roles' sessions in
 * pg_stat_activity (neither superuser nor pg_read_all_stats) sees no xact_start there, so no holder looks long
 * and every attempt goes ahead: lock_timeout alone bounds the stall, as without the look.
 */
export async function holdBackBehindLongTransactions(
  ctx: ExecutorContext,
  stmt: PlannedStatement,
  ddl: Pick<DdlSettings, 'longTransactionMs'>,
  watcher: LockWatcher,
  attempt: number,
  budgetMs: number,
  signal?: AbortSignal,
): Promise<HeldBack> {
  const locks = queueingLocks(stmt);
  if (ddl.longTransactionMs === null || locks.length === 0) return { waitedMs: 0, exhausted: false };
  const params = [locks.map((l) => l.rel), locks.map((l) => l.modes), ddl.longTransactionMs];
  const started = ctx.clock.now();
  let reportedAt = -Infinity;
  for (;;) {
    const holders = await watcher.query(LONG_HOLDERS_SQL, params).then(
      (rows) => rows.map(toBlocker),
      (error: unknown) => {
        // The look only spares the application a queue: without it the attempt goes ahead under lock_timeout.
        ctx.logger.debug('phaseflag: could not look for long transactions before a DDL attempt', {
          error: String(error),
        });
        return [];
      },
    );
    const waitedMs = ctx.clock.now() - started;
    if (holders.length === 0) return { waitedMs, exhausted: false };
    if (waitedMs - reportedAt >= REPORT_EVERY_MS) {
      reportedAt = waitedMs;
      watcher.report(holders, attempt, waitedMs, false);
    }
    if (waitedMs >= budgetMs) return { waitedMs, exhausted: true };
    await ctx.clock.sleep(Math.min(POLL_MS, Math.max(1, budgetMs - waitedMs)), signal);
    if (signal?.aborted) return { waitedMs: ctx.clock.now() - started, exhausted: false };
  }
}
