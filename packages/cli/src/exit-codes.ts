import type { ErrorCode } from '@phaseflag/core';
import type { CliErrorCode } from './error-codes.js';

/**
 * Exit codes a script can branch on. Each error family maps to one code; the README lists them with examples.
 * 130 is the shell's convention for "stopped by SIGINT".
 */
export const EXIT = {
  ok: 0,
  /** Unexpected: a bug, or an error phaseflag has no better code for. */
  error: 1,
  /** `phaseflag lint` found error-level findings (warnings alone exit 0). */
  lintFindings: 1,
  /** `phaseflag check` failed: a lint error, a migration the database refuses, or drift. */
  checkFailed: 1,
  /** `phaseflag rehearse` failed: a threshold crossed, or a phase failed on the copy. */
  rehearseFailed: 1,
  /** Bad arguments, config (a transaction pooler where a direct connection is needed too) or declaration (nothing was changed). */
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
  /** Interrupted (Ctrl-C); whatever ran stopped cleanly and can be resumed (`phaseflag dev`: stopped, nothing left). */
  interrupted: 130,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** Every error code, the engine's and the command line's, and its exit code. */
const BY_CODE = {
  PF_INVALID_IDENTIFIER: EXIT.usage,
  PF_INVALID_MIGRATION: EXIT.usage,
  PF_INVALID_OPTIONS: EXIT.usage,
  PF_DEFINITION_CHANGED: EXIT.refused,
  PF_UNKNOWN_TABLE: EXIT.usage,
  PF_UNKNOWN_COLUMN: EXIT.usage,
  PF_UNKNOWN_TYPE: EXIT.usage,
  PF_NO_PRIMARY_KEY: EXIT.usage,
  PF_COLUMN_TYPE_CONFLICT: EXIT.usage,
  PF_INVALID_EXPRESSION: EXIT.usage,
  PF_VOLATILE_EXPRESSION: EXIT.usage,
  PF_SUBQUERY_EXPRESSION: EXIT.usage,
  PF_GUARD_REFUSED: EXIT.refused,
  PF_CONFIRMATION_REQUIRED: EXIT.refused,
  PF_IRREVERSIBLE: EXIT.refused,
  PF_DERIVED_SOURCE_KEPT: EXIT.refused,
  PF_DEFAULT_NOT_CARRIED: EXIT.refused,
  PF_PREFLIGHT_FAILED: EXIT.refused,
  PF_DRIFT: EXIT.error,
  PF_MIGRATION_CONFLICT: EXIT.refused,
  PF_BACKFILL_LOCKED: EXIT.refused,
  PF_BACKFILL_LOCK_LOST: EXIT.refused,
  PF_LOCK_TIMEOUT: EXIT.refused,
  PF_DDL_FAILED: EXIT.error,
  PF_VERIFY_FAILED: EXIT.verifyFailed,
  PF_BACKFILL_ROW_FAILED: EXIT.rowFailed,
  PF_UNKNOWN_MIGRATION: EXIT.usage,
  PF_STATE_UNAVAILABLE: EXIT.unavailable,
  PF_STATE_SCHEMA_TOO_NEW: EXIT.usage,
  PF_STATE_NOT_INSTALLED: EXIT.usage,
  PF_STATE_SCHEMA_OUTDATED: EXIT.usage,
  PF_PERMISSION_DENIED: EXIT.refused,
  PF_CONNECTION_LOST: EXIT.unavailable,
  PF_TRANSACTION_POOLER: EXIT.usage,
  PF_UNLEASH_UNAVAILABLE: EXIT.unavailable,
  PF_UNLEASH_REJECTED: EXIT.unavailable,
  PF_LINT_SYNTAX: EXIT.usage,
  PF_LINT_UNKNOWN_RULE: EXIT.usage,
  PF_LINT_FILE_NOT_FOUND: EXIT.usage,
  PF_LINT_UNSUPPORTED_FILE: EXIT.usage,
  PF_LINT_MIGRATION_LOAD: EXIT.usage,
  PF_USAGE_BAD_OPTION: EXIT.usage,
  PF_USAGE_BAD_KNOB: EXIT.usage,
  PF_USAGE_FILE_EXISTS: EXIT.usage,
  PF_USAGE_DUPLICATE_MIGRATION: EXIT.usage,
  PF_USAGE_CONFIG_NOT_EDITABLE: EXIT.usage,
  PF_USAGE_INVALID_MIGRATION: EXIT.usage,
  PF_USAGE_NO_DATABASE: EXIT.usage,
  PF_USAGE_NO_UNLEASH: EXIT.usage,
  PF_CONFIG_NOT_FOUND: EXIT.usage,
  PF_CONFIG_INVALID: EXIT.usage,
  PF_DATABASE_UNAVAILABLE: EXIT.unavailable,
  PF_LOCAL_START: EXIT.unavailable,
  PF_INTERRUPTED: EXIT.interrupted,
  PF_UNEXPECTED: EXIT.error,
} as const satisfies Readonly<Record<ErrorCode | CliErrorCode, ExitCode>>;

/** Exit code for an error code (a string that is no phaseflag code is unexpected: 1). */
export function exitCodeFor(code: ErrorCode | CliErrorCode | (string & {})): ExitCode {
  return Object.prototype.hasOwnProperty.call(BY_CODE, code) ? BY_CODE[code as keyof typeof BY_CODE] : EXIT.error;
}
