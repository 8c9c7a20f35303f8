import type { DdlSettings } from '@phaseflag/core';

/** Table lock modes, weakest to strongest as far as application traffic is concerned. */
export type LockMode =
  | 'NONE'
  | 'ACCESS SHARE'
  | 'ROW EXCLUSIVE'
  | 'SHARE UPDATE EXCLUSIVE'
  | 'SHARE'
  | 'SHARE ROW EXCLUSIVE'
  | 'ACCESS EXCLUSIVE';

/** One statement of a plan: its SQL beside the lock it takes, as a reviewer (and the `plan` command) reads it. */
export interface PlannedStatement {
  /** The step that issues it (`add-column`, `create-index`, …). */
  readonly step: string;
  readonly sql: string;
  /** The strongest table lock the statement takes. */
  readonly lock: LockMode;
  /** The longest it may wait for that lock in all: lock_timeout × maxAttempts (0 when it takes none). */
  readonly maxLockWaitMs: number;
  /**
   * The longest the statement may take before it has its lock or gives up with PF_LOCK_TIMEOUT: maxLockWaitMs
   * plus the back-off sleeps between attempts (during which it waits for nothing and blocks nobody). Its own
   * run time once it has the lock comes on top.
   */
  readonly maxDurationMs: number;
  /** Runs inside BEGIN … COMMIT; false for CREATE/DROP INDEX CONCURRENTLY, which refuse a transaction block. */
  readonly transactional: boolean;
  readonly description: string;
  /**
   * The table `lock` is taken on. For a transactional statement runDdl takes it first with
   * `LOCK TABLE … IN <lock> MODE`, so the wait is measured exactly and ends at lock_timeout before any DDL runs.
   */
  readonly table?: { readonly schema: string; readonly name: string };
  /**
   * Locks the statement takes on other tables as well (a foreign key's referenced table), taken by the statement
   * itself under the same lock_timeout.
   */
  readonly otherLocks?: readonly {
    readonly table: { readonly schema: string; readonly name: string };
    readonly lock: LockMode | 'ROW SHARE';
  }[];
}

/**
 * Whether a request for this table lock, while it waits, lets the application's reads (ACCESS SHARE) and writes
 * (ROW EXCLUSIVE) through: a waiting request blocks only later requests that conflict with it, and these conflict
 * with neither (SHARE UPDATE EXCLUSIVE conflicts with DDL, VACUUM and ANALYZE only).
 */
export function letsApplicationThrough(lock: LockMode): boolean {
  return lock === 'ACCESS SHARE' || lock === 'ROW EXCLUSIVE' || lock === 'SHARE UPDATE EXCLUSIVE';
}

/** The lock_timeout a statement runs with: short where a waiting lock would stall the application. */
export function lockTimeoutFor(
  lock: LockMode,
  ddl: Pick<DdlSettings, 'lockTimeoutMs' | 'nonBlockingLockTimeoutMs'>,
): number {
  return letsApplicationThrough(lock) ? Math.max(ddl.lockTimeoutMs, ddl.nonBlockingLockTimeoutMs) : ddl.lockTimeoutMs;
}

/** lock_timeout × attempts: the plan's bound on how long a statement may wait for its lock in all. */
export function maxLockWait(
  lock: LockMode,
  ddl: Pick<DdlSettings, 'lockTimeoutMs' | 'nonBlockingLockTimeoutMs' | 'maxAttempts'>,
): number {
  return lock === 'NONE' ? 0 : lockTimeoutFor(lock, ddl) * ddl.maxAttempts;
}

const LOCK_ORDER: readonly LockMode[] = [
  'NONE',
  'ACCESS SHARE',
  'ROW EXCLUSIVE',
  'SHARE UPDATE EXCLUSIVE',
  'SHARE',
  'SHARE ROW EXCLUSIVE',
  'ACCESS EXCLUSIVE',
];

/** The stronger of two table locks. */
export function strongerLock(a: LockMode, b: LockMode): LockMode {
  return LOCK_ORDER.indexOf(b) > LOCK_ORDER.indexOf(a) ? b : a;
}

/** The back-off step before attempt `attempt + 1`; runDdl sleeps between half of it and all of it. */
export function backoffStepMs(attempt: number, ddl: Pick<DdlSettings, 'retryBaseMs' | 'retryMaxMs'>): number {
  return Math.min(ddl.retryMaxMs, ddl.retryBaseMs * 2 ** Math.min(attempt - 1, 30));
}

/** maxLockWait plus the longest back-off between its attempts: the plan's bound on a statement's time to give up. */
export function maxDuration(
  lock: LockMode,
  ddl: Pick<DdlSettings, 'lockTimeoutMs' | 'nonBlockingLockTimeoutMs' | 'maxAttempts' | 'retryBaseMs' | 'retryMaxMs'>,
): number {
  if (lock === 'NONE') return 0;
  let backoff = 0;
  for (let attempt = 1; attempt < ddl.maxAttempts; attempt++) backoff += backoffStepMs(attempt, ddl);
  return maxLockWait(lock, ddl) + backoff;
}

/** A statement that is not retried: it waits at most `ms` in all. */
export function waitsOnce(ms: number): Pick<PlannedStatement, 'maxLockWaitMs' | 'maxDurationMs'> {
  return { maxLockWaitMs: ms, maxDurationMs: ms };
}
