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
