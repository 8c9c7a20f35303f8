/**
 * Every error phaseflag throws is a PhaseflagError with a stable `code`, the offending value and a hint that
 * says what to do instead, in the manner of strong_migrations: what is unsafe or wrong, why, and the safe way.
 */

/**
 * The error classes, one per family; `UnleashUnavailableError` and `UnleashRejectedError` live in `@phaseflag/unleash`,
 * `LintError` in `@phaseflag/lint`.
 */
export type ErrorClassName =
  | 'ValidationError'
  | 'CatalogError'
  | 'GuardRefusedError'
  | 'ConflictError'
  | 'LockTimeoutError'
  | 'DdlFailedError'
  | 'VerifyFailedError'
  | 'BackfillRowFailedError'
  | 'StateError'
  | 'ConfigError'
  | 'UnleashUnavailableError'
  | 'UnleashRejectedError'
  | 'LintError';

/**
 * Every error code and the one class that throws it. The table is the list of codes (`ErrorCode` is its keys),
 * so a code cannot be added without its class; each class's constructor accepts only its own codes, so a code
 * cannot be thrown by another class. A caller may branch on the class (`instanceof ConflictError`: try again
 * later) or on the code; both say the same.
 */
export const ERROR_CLASS_BY_CODE = Object.freeze({
  PF_INVALID_IDENTIFIER: 'ValidationError',
  PF_INVALID_MIGRATION: 'ValidationError',
  PF_INVALID_OPTIONS: 'ValidationError',
  PF_DEFINITION_CHANGED: 'ValidationError',
  PF_UNKNOWN_TABLE: 'CatalogError',
  PF_UNKNOWN_COLUMN: 'CatalogError',
  PF_UNKNOWN_TYPE: 'CatalogError',
  PF_NO_PRIMARY_KEY: 'CatalogError',
  PF_COLUMN_TYPE_CONFLICT: 'CatalogError',
  PF_INVALID_EXPRESSION: 'CatalogError',
  PF_VOLATILE_EXPRESSION: 'CatalogError',
  PF_SUBQUERY_EXPRESSION: 'CatalogError',
  PF_GUARD_REFUSED: 'GuardRefusedError',
  PF_CONFIRMATION_REQUIRED: 'GuardRefusedError',
  PF_IRREVERSIBLE: 'GuardRefusedError',
  PF_DERIVED_SOURCE_KEPT: 'GuardRefusedError',
  PF_DEFAULT_NOT_CARRIED: 'GuardRefusedError',
  PF_PREFLIGHT_FAILED: 'GuardRefusedError',
  PF_DRIFT: 'GuardRefusedError',
  PF_MIGRATION_CONFLICT: 'ConflictError',
  PF_BACKFILL_LOCKED: 'ConflictError',
  PF_BACKFILL_LOCK_LOST: 'ConflictError',
  PF_LOCK_TIMEOUT: 'LockTimeoutError',
  PF_DDL_FAILED: 'DdlFailedError',
  PF_VERIFY_FAILED: 'VerifyFailedError',
  PF_BACKFILL_ROW_FAILED: 'BackfillRowFailedError',
  PF_UNKNOWN_MIGRATION: 'StateError',
  PF_STATE_UNAVAILABLE: 'StateError',
  PF_STATE_SCHEMA_TOO_NEW: 'StateError',
  PF_STATE_NOT_INSTALLED: 'StateError',
  PF_STATE_SCHEMA_OUTDATED: 'StateError',
  PF_CONNECTION_LOST: 'StateError',
  PF_TRANSACTION_POOLER: 'ConfigError',
  PF_UNLEASH_UNAVAILABLE: 'UnleashUnavailableError',
  PF_UNLEASH_REJECTED: 'UnleashRejectedError',
  PF_LINT_SYNTAX: 'LintError',
  PF_LINT_UNKNOWN_RULE: 'LintError',
  PF_LINT_FILE_NOT_FOUND: 'LintError',
  PF_LINT_UNSUPPORTED_FILE: 'LintError',
  PF_LINT_MIGRATION_LOAD: 'LintError',
} as const satisfies Readonly<Record<`PF_${string}`, ErrorClassName>>);

export type ErrorCode = keyof typeof ERROR_CLASS_BY_CODE;

/** The codes class `N` throws, e.g. `ErrorCodeOf<'ConflictError'>` is `'PF_MIGRATION_CONFLICT' | 'PF_BACKFILL_LOCKED'`. */
export type ErrorCodeOf<N extends ErrorClassName> = {
  [C in ErrorCode]: (typeof ERROR_CLASS_BY_CODE)[C] extends N ? C : never;
}[ErrorCode];

/** Every code, in the table's order. */
export const ERROR_CODES: readonly ErrorCode[] = Object.freeze(Object.keys(ERROR_CLASS_BY_CODE) as ErrorCode[]);

/** The name of the one class that throws `code` (an error's `name` is its class's name). */
export function errorClassOf<C extends ErrorCode>(code: C): (typeof ERROR_CLASS_BY_CODE)[C] {
  return ERROR_CLASS_BY_CODE[code];
}

export interface PhaseflagErrorOptions {
  /** The value that was refused (an identifier, an expression, an option object). */
  value?: unknown;
  /** What to do instead, in one or two sentences. */
  hint: string;
  /** The migration concerned, when there is one. */
  migrationId?: string;
  cause?: unknown;
}

/**
 * The base of every phaseflag error, for `instanceof` and `isPhaseflagError()`. Throw the family class the
 * table names for the code (`ERROR_CLASS_BY_CODE`), never the base itself.
 */
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
    return {
      name: this.name,
      code: this.code,
      message: this.message,
      value: this.value,
      hint: this.hint,
      migrationId: this.migrationId,
    };
  }
}

/** The declaration or its options are wrong (or were changed while the migration is in flight); nothing was executed. */
export class ValidationError extends PhaseflagError {
  declare readonly code: ErrorCodeOf<'ValidationError'>;
  constructor(code: ErrorCodeOf<'ValidationError'>, message: string, options: PhaseflagErrorOptions) {
    super(code, message, options);
  }
}

/** The declaration does not fit the live database catalog; nothing was executed. */
export class CatalogError extends PhaseflagError {
  declare readonly code: ErrorCodeOf<'CatalogError'>;
  constructor(code: ErrorCodeOf<'CatalogError'>, message: string, options: PhaseflagErrorOptions) {
    super(code, message, options);
  }
}

/** A transition was asked for that its guard refuses (the database does not support it yet, or ever). */
export class GuardRefusedError extends PhaseflagError {
  declare readonly code: ErrorCodeOf<'GuardRefusedError'>;
  readonly from: string;
  readonly action: string;
  constructor(
    message: string,
    options: PhaseflagErrorOptions & { from: string; action: string; code?: ErrorCodeOf<'GuardRefusedError'> },
  ) {
    super(options.code ?? 'PF_GUARD_REFUSED', message, options);
    this.from = options.from;
    this.action = options.action;
  }
}

/**
 * Two migrations, or two runners of one migration, want the same thing at once (a lock, a phase change, a column,
 * an index or constraint name): wait for the other, or pick another name.
 */
export class ConflictError extends PhaseflagError {
  declare readonly code: ErrorCodeOf<'ConflictError'>;
  constructor(code: ErrorCodeOf<'ConflictError'>, message: string, options: PhaseflagErrorOptions) {
    super(code, message, options);
  }
}

/** DDL could not take its lock within lock_timeout after every retry. */
export class LockTimeoutError extends PhaseflagError {
  declare readonly code: ErrorCodeOf<'LockTimeoutError'>;
  readonly attempts: number;
  constructor(message: string, options: PhaseflagErrorOptions & { attempts: number }) {
    super('PF_LOCK_TIMEOUT', message, options);
    this.attempts = options.attempts;
  }
}

/** A DDL statement failed for another reason than its lock (Postgres's error is the message and the cause). */
export class DdlFailedError extends PhaseflagError {
  declare readonly code: ErrorCodeOf<'DdlFailedError'>;
  constructor(message: string, options: PhaseflagErrorOptions) {
    super('PF_DDL_FAILED', message, options);
  }
}

/** Verify found rows whose new column does not match the backfill expression. */
export class VerifyFailedError extends PhaseflagError {
  declare readonly code: ErrorCodeOf<'VerifyFailedError'>;
  constructor(code: ErrorCodeOf<'VerifyFailedError'>, message: string, options: PhaseflagErrorOptions) {
    super(code, message, options);
  }
}

/**
 * The backfill met a row its expression cannot derive (and that no preflight or trigger had recorded): the row's
 * key, old value and Postgres's error are in the message and in `value`. The batch was rolled back; the run
 * stopped; the migration was paused. `rowsUpdated` counts the rows the run had updated before it stopped.
 */
export class BackfillRowFailedError extends PhaseflagError {
  declare readonly code: ErrorCodeOf<'BackfillRowFailedError'>;
  rowsUpdated = 0;
  constructor(message: string, options: PhaseflagErrorOptions) {
    super('PF_BACKFILL_ROW_FAILED', message, options);
  }
}

/** The state store could not be read or written, or holds no migration of the id asked for. */
export class StateError extends PhaseflagError {
  declare readonly code: ErrorCodeOf<'StateError'>;
  constructor(code: ErrorCodeOf<'StateError'>, message: string, options: PhaseflagErrorOptions) {
    super(code, message, options);
  }
}

/**
 * The deployment does not allow this (a connection that cannot carry what the step needs, e.g. a transaction
 * pooler in front of the operator side): nothing was changed or locked; fix the configuration named in the hint.
 */
export class ConfigError extends PhaseflagError {
  declare readonly code: ErrorCodeOf<'ConfigError'>;
  constructor(code: ErrorCodeOf<'ConfigError'>, message: string, options: PhaseflagErrorOptions) {
    super(code, message, options);
  }
}

export function isPhaseflagError(error: unknown, code?: ErrorCode): error is PhaseflagError {
  return error instanceof PhaseflagError && (code === undefined || error.code === code);
}
