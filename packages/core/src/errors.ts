/**
 * Every error phaseflag throws is a PhaseflagError with a stable `code`, the offending value and a hint that
 * says what to do instead, in the manner of strong_migrations: what is unsafe or wrong, why, and the safe way.
 */
export type ErrorCode =
  | 'PF_INVALID_IDENTIFIER'
  | 'PF_INVALID_MIGRATION'
  | 'PF_INVALID_OPTIONS'
  | 'PF_UNKNOWN_TABLE'
  | 'PF_UNKNOWN_COLUMN'
  | 'PF_UNKNOWN_TYPE'
  | 'PF_NO_PRIMARY_KEY'
  | 'PF_COLUMN_TYPE_CONFLICT'
  | 'PF_INVALID_EXPRESSION'
  | 'PF_VOLATILE_EXPRESSION'
  | 'PF_SUBQUERY_EXPRESSION'
  | 'PF_MIGRATION_CONFLICT'
  | 'PF_DEFINITION_CHANGED'
  | 'PF_UNKNOWN_MIGRATION'
  | 'PF_GUARD_REFUSED'
  | 'PF_CONFIRMATION_REQUIRED'
  | 'PF_IRREVERSIBLE'
  | 'PF_DERIVED_SOURCE_KEPT'
  | 'PF_DEFAULT_NOT_CARRIED'
  | 'PF_LOCK_TIMEOUT'
  | 'PF_BACKFILL_LOCKED'
  | 'PF_VERIFY_FAILED'
  | 'PF_BACKFILL_ROW_FAILED'
  | 'PF_PREFLIGHT_FAILED'
  | 'PF_STATE_UNAVAILABLE'
  | 'PF_STATE_SCHEMA_TOO_NEW'
  | 'PF_DDL_FAILED'
  | 'PF_UNLEASH_UNAVAILABLE'
  | 'PF_UNLEASH_REJECTED';

export interface PhaseflagErrorOptions {
  /** The value that was refused (an identifier, an expression, an option object). */
  value?: unknown;
  /** What to do instead, in one or two sentences. */
  hint: string;
  /** The migration concerned, when there is one. */
  migrationId?: string;
  cause?: unknown;
}

export class PhaseflagError extends Error {
  readonly code: ErrorCode;
  readonly value: unknown;
  readonly hint: string;
  readonly migrationId: string | undefined;

  constructor(code: ErrorCode, message: string, options: PhaseflagErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.value = options.value;
    this.hint = options.hint;
    this.migrationId = options.migrationId;
  }

  /** A plain object for logs and `--json` output. */
  toJSON(): Record<string, unknown> {
    return { name: this.name, code: this.code, message: this.message, value: this.value, hint: this.hint, migrationId: this.migrationId };
  }
}

/** The declaration or its options are wrong; nothing was executed. */
export class ValidationError extends PhaseflagError {}

/** The declaration does not fit the live database catalog; nothing was executed. */
export class CatalogError extends PhaseflagError {}

/** A transition was asked for that its guard refuses (the database does not support it yet). */
export class GuardRefusedError extends PhaseflagError {
  readonly from: string;
  readonly action: string;
  constructor(message: string, options: PhaseflagErrorOptions & { from: string; action: string; code?: ErrorCode }) {
    super(options.code ?? 'PF_GUARD_REFUSED', message, options);
    this.from = options.from;
    this.action = options.action;
  }
}

/** Two migrations, or two runners of one migration, want the same thing at once. */
export class ConflictError extends PhaseflagError {}

/** DDL could not take its lock within lock_timeout after every retry. */
export class LockTimeoutError extends PhaseflagError {
  readonly attempts: number;
  constructor(message: string, options: PhaseflagErrorOptions & { attempts: number }) {
    super('PF_LOCK_TIMEOUT', message, options);
    this.attempts = options.attempts;
  }
}

/** Verify found rows whose new column does not match the backfill expression. */
export class VerifyFailedError extends PhaseflagError {}

/**
 * The backfill met a row its expression cannot derive (and that no preflight or trigger had recorded): the row's
 * key, old value and Postgres's error are in the message and in `value`. The batch was rolled back; the run
 * stopped; the migration was paused. `rowsUpdated` counts the rows the run had updated before it stopped.
 */
export class BackfillRowFailedError extends PhaseflagError {
  rowsUpdated = 0;
  constructor(message: string, options: PhaseflagErrorOptions) {
    super('PF_BACKFILL_ROW_FAILED', message, options);
  }
}

/** The state store could not be read or written. */
export class StateError extends PhaseflagError {}

export function isPhaseflagError(error: unknown, code?: ErrorCode): error is PhaseflagError {
  return error instanceof PhaseflagError && (code === undefined || error.code === code);
}
