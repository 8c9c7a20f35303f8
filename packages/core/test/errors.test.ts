import assert from 'node:assert/strict';
import {
  BackfillRowFailedError,
  CatalogError,
  ConfigError,
  ConflictError,
  DdlFailedError,
  ERROR_CLASS_BY_CODE,
  ERROR_CODES,
  errorClassOf,
  GuardRefusedError,
  isPhaseflagError,
  LockTimeoutError,
  PhaseflagError,
  StateError,
  ValidationError,
  VerifyFailedError,
  type ErrorClassName,
  type ErrorCode,
  type ErrorCodeOf,
} from '../src/index.js';

/** Every code phaseflag has ever thrown: a code is a contract with scripts and callers, so none may go missing. */
const KNOWN_CODES = [
  'PF_INVALID_IDENTIFIER',
  'PF_INVALID_MIGRATION',
  'PF_INVALID_OPTIONS',
  'PF_UNKNOWN_TABLE',
  'PF_UNKNOWN_COLUMN',
  'PF_UNKNOWN_TYPE',
  'PF_NO_PRIMARY_KEY',
  'PF_COLUMN_TYPE_CONFLICT',
  'PF_INVALID_EXPRESSION',
  'PF_VOLATILE_EXPRESSION',
  'PF_SUBQUERY_EXPRESSION',
  'PF_MIGRATION_CONFLICT',
  'PF_DEFINITION_CHANGED',
  'PF_UNKNOWN_MIGRATION',
  'PF_GUARD_REFUSED',
  'PF_CONFIRMATION_REQUIRED',
  'PF_IRREVERSIBLE',
  'PF_DERIVED_SOURCE_KEPT',
  'PF_DEFAULT_NOT_CARRIED',
  'PF_LOCK_TIMEOUT',
  'PF_BACKFILL_LOCKED',
  'PF_BACKFILL_LOCK_LOST',
  'PF_CONNECTION_LOST',
  'PF_VERIFY_FAILED',
  'PF_BACKFILL_ROW_FAILED',
  'PF_PREFLIGHT_FAILED',
  'PF_DRIFT',
  'PF_STATE_UNAVAILABLE',
  'PF_STATE_SCHEMA_TOO_NEW',
  'PF_STATE_NOT_INSTALLED',
  'PF_STATE_SCHEMA_OUTDATED',
  'PF_DDL_FAILED',
  'PF_UNLEASH_UNAVAILABLE',
  'PF_UNLEASH_REJECTED',
  'PF_TRANSACTION_POOLER',
  'PF_LINT_SYNTAX',
  'PF_LINT_UNKNOWN_RULE',
  'PF_LINT_FILE_NOT_FOUND',
  'PF_LINT_UNSUPPORTED_FILE',
  'PF_LINT_MIGRATION_LOAD',
] as const satisfies readonly ErrorCode[];

const options = { hint: 'do the safe thing', value: 'v', migrationId: 'm' };

/** One way to build each class of this package with a given code (the Unleash classes are checked in their package). */
const BUILD: {
  [N in Exclude<ErrorClassName, 'UnleashUnavailableError' | 'UnleashRejectedError' | 'LintError'>]: (
    code: ErrorCodeOf<N>,
  ) => PhaseflagError;
} = {
  ValidationError: (code) => new ValidationError(code, 'm', options),
  CatalogError: (code) => new CatalogError(code, 'm', options),
  GuardRefusedError: (code) => new GuardRefusedError('m', { ...options, from: 'pending', action: 'read-new', code }),
  ConflictError: (code) => new ConflictError(code, 'm', options),
  LockTimeoutError: () => new LockTimeoutError('m', { ...options, attempts: 1 }),
  DdlFailedError: () => new DdlFailedError('m', options),
  VerifyFailedError: (code) => new VerifyFailedError(code, 'm', options),
  BackfillRowFailedError: () => new BackfillRowFailedError('m', options),
  StateError: (code) => new StateError(code, 'm', options),
  ConfigError: (code) => new ConfigError(code, 'm', options),
};

describe('errors: one class per code', () => {
  it('the table is total: every code maps to one class, and no code that was ever thrown is missing', () => {
    // Compile-time half: a table missing a code, or naming a class that does not exist, fails to typecheck here.
    const total: Readonly<Record<ErrorCode, ErrorClassName>> = ERROR_CLASS_BY_CODE;
    assert.deepEqual([...ERROR_CODES].sort(), [...KNOWN_CODES].sort());
    assert.deepEqual(Object.keys(total).sort(), [...KNOWN_CODES].sort());
    for (const code of ERROR_CODES) assert.equal(typeof errorClassOf(code), 'string', code);
    assert.ok(Object.isFrozen(ERROR_CLASS_BY_CODE));
  });

  it("an error of each code is an instance of the table's class for it, with that name", () => {
    for (const code of ERROR_CODES) {
      const name = errorClassOf(code);
      if (name === 'UnleashUnavailableError' || name === 'UnleashRejectedError' || name === 'LintError') continue;
      const error = (BUILD[name] as (c: ErrorCode) => PhaseflagError)(code);
      assert.equal(error.code, code);
      assert.equal(error.name, name, code);
      assert.ok(error instanceof PhaseflagError);
      assert.ok(isPhaseflagError(error, code));
      assert.equal(error.hint, options.hint);
    }
  });

  it("codes of the classes that keep one code (lock timeout, DDL, failed backfill row) are the table's", () => {
    assert.equal(new LockTimeoutError('m', { ...options, attempts: 2 }).code, 'PF_LOCK_TIMEOUT');
    assert.equal(new DdlFailedError('m', options).code, 'PF_DDL_FAILED');
    assert.equal(new BackfillRowFailedError('m', options).code, 'PF_BACKFILL_ROW_FAILED');
    assert.equal(
      new GuardRefusedError('m', { ...options, from: 'pending', action: 'read-new' }).code,
      'PF_GUARD_REFUSED',
    );
  });

  it('a class refuses, at compile time, a code the table gives to another class', () => {
    // Never run: the @ts-expect-error lines fail the package's typecheck if a constructor accepts the code.
    const compileOnly = (): void => {
      // @ts-expect-error PF_LOCK_TIMEOUT belongs to LockTimeoutError
      void new ValidationError('PF_LOCK_TIMEOUT', 'm', options);
      // @ts-expect-error PF_MIGRATION_CONFLICT belongs to ConflictError
      void new CatalogError('PF_MIGRATION_CONFLICT', 'm', options);
      // @ts-expect-error PF_INVALID_MIGRATION belongs to ValidationError
      void new CatalogError('PF_INVALID_MIGRATION', 'm', options);
      // @ts-expect-error PF_UNKNOWN_MIGRATION belongs to StateError
      void new ValidationError('PF_UNKNOWN_MIGRATION', 'm', options);
      // @ts-expect-error PF_MIGRATION_CONFLICT belongs to ConflictError
      void new GuardRefusedError('m', { ...options, from: 'pending', action: 'expand', code: 'PF_MIGRATION_CONFLICT' });
    };
    assert.equal(typeof compileOnly, 'function');
  });
});
