/**
 * Exit codes a script can branch on. Each error family maps to one code; the README lists them with examples.
 * 130 is the shell's convention for "stopped by SIGINT".
 */
export const EXIT = {
  ok: 0,
  /** Unexpected: a bug, or an error phaseflag has no better code for. */
  error: 1,
  /** Bad arguments, config or migration declaration (nothing was changed). */
  usage: 2,
  /** The database does not allow this now: a guard refused, confirmation missing, another runner holds the lock. */
  refused: 3,
  /** Verify found rows that differ. */
  verifyFailed: 4,
  /** Postgres or Unleash could not be reached or refused the credentials. */
  unavailable: 5,
  /**
   * The backfill stopped on a row its expression cannot derive: the rows before it were updated (so not 2,
   * "nothing changed"), the migration is paused, the row is named. Fix it and rerun.
   */
  rowFailed: 6,
  /** Interrupted (Ctrl-C); whatever ran stopped cleanly and can be resumed. */
  interrupted: 130,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

const BY_CODE: Readonly<Record<string, ExitCode>> = {
  PF_GUARD_REFUSED: EXIT.refused,
  PF_CONFIRMATION_REQUIRED: EXIT.refused,
  PF_IRREVERSIBLE: EXIT.refused,
  PF_MIGRATION_CONFLICT: EXIT.refused,
  PF_DERIVED_SOURCE_KEPT: EXIT.refused,
  PF_DEFAULT_NOT_CARRIED: EXIT.refused,
  PF_BACKFILL_LOCKED: EXIT.refused,
  PF_LOCK_TIMEOUT: EXIT.refused,
  PF_DEFINITION_CHANGED: EXIT.refused,
  PF_VERIFY_FAILED: EXIT.verifyFailed,
  PF_PREFLIGHT_FAILED: EXIT.refused,
  PF_BACKFILL_ROW_FAILED: EXIT.rowFailed,
  PF_STATE_UNAVAILABLE: EXIT.unavailable,
  PF_UNLEASH_UNAVAILABLE: EXIT.unavailable,
  PF_UNLEASH_REJECTED: EXIT.unavailable,
  PF_DATABASE_UNAVAILABLE: EXIT.unavailable,
  PF_INTERRUPTED: EXIT.interrupted,
};

/** Exit code for an error code: the table above, else bad input (PF_INVALID_*, PF_UNKNOWN_*, …) is a usage error. */
export function exitCodeFor(code: string): ExitCode {
  const known = BY_CODE[code];
  if (known !== undefined) return known;
  if (/^PF_(INVALID|UNKNOWN|NO_|COLUMN_TYPE|VOLATILE|SUBQUERY|USAGE|CONFIG|STATE_SCHEMA_TOO_NEW)/.test(code)) return EXIT.usage;
  return EXIT.error;
}
