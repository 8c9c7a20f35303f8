import assert from 'node:assert/strict';
import { ERROR_CODES, type ErrorCode } from '@phaseflag/core';
import type { CliErrorCode } from '../src/error-codes.js';
import { EXIT, exitCodeFor } from '../src/exit-codes.js';
import { describeError } from '../src/errors.js';

/** Compile-time: the command line's codes are its own, never one of the engine's. */
type Shared = Extract<CliErrorCode, ErrorCode>;
const noSharedCode: [Shared] extends [never] ? true : false = true;

const CLI_CODES: readonly CliErrorCode[] = [
  'PF_USAGE_BAD_OPTION',
  'PF_USAGE_BAD_KNOB',
  'PF_USAGE_FILE_EXISTS',
  'PF_USAGE_INVALID_MIGRATION',
  'PF_USAGE_NO_DATABASE',
  'PF_USAGE_NO_UNLEASH',
  'PF_CONFIG_NOT_FOUND',
  'PF_CONFIG_INVALID',
  'PF_DATABASE_UNAVAILABLE',
  'PF_INTERRUPTED',
  'PF_UNEXPECTED',
];

describe('exit codes', () => {
  it('maps every engine code and every command-line code to one of the documented exit codes', () => {
    assert.equal(noSharedCode, true);
    const documented = new Set<number>(Object.values(EXIT));
    for (const code of [...ERROR_CODES, ...CLI_CODES]) assert.ok(documented.has(exitCodeFor(code)), code);
  });

  it('sorts codes by what a script does next: fix the input (2), wait or confirm (3), look at rows (4), reach the service (5)', () => {
    assert.equal(exitCodeFor('PF_INVALID_MIGRATION'), EXIT.usage);
    assert.equal(exitCodeFor('PF_UNKNOWN_MIGRATION'), EXIT.usage);
    assert.equal(exitCodeFor('PF_CONFIG_INVALID'), EXIT.usage);
    assert.equal(exitCodeFor('PF_STATE_SCHEMA_TOO_NEW'), EXIT.usage);
    assert.equal(exitCodeFor('PF_TRANSACTION_POOLER'), EXIT.usage);
    assert.equal(exitCodeFor('PF_GUARD_REFUSED'), EXIT.refused);
    assert.equal(exitCodeFor('PF_MIGRATION_CONFLICT'), EXIT.refused);
    assert.equal(exitCodeFor('PF_DEFINITION_CHANGED'), EXIT.refused);
    assert.equal(exitCodeFor('PF_VERIFY_FAILED'), EXIT.verifyFailed);
    assert.equal(exitCodeFor('PF_DATABASE_UNAVAILABLE'), EXIT.unavailable);
    assert.equal(exitCodeFor('PF_UNLEASH_REJECTED'), EXIT.unavailable);
    assert.equal(exitCodeFor('PF_BACKFILL_ROW_FAILED'), EXIT.rowFailed);
    assert.equal(exitCodeFor('PF_INTERRUPTED'), EXIT.interrupted);
    assert.equal(exitCodeFor('PF_UNEXPECTED'), EXIT.error);
    assert.equal(exitCodeFor('not a phaseflag code'), EXIT.error);
  });

  it('a connection lost mid-run is the database being unavailable (5), not a bug (1)', () => {
    assert.equal(exitCodeFor('PF_CONNECTION_LOST'), EXIT.unavailable);
    assert.equal(exitCodeFor('PF_BACKFILL_LOCK_LOST'), EXIT.refused);
    const lost = [
      Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }),
      Object.assign(new Error('terminating connection due to crash of another server process'), { code: '57P02' }),
      Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }),
      new Error('Connection terminated unexpectedly'),
      new Error('server closed the connection unexpectedly'),
    ];
    for (const error of lost) {
      const report = describeError(error);
      assert.equal(report.code, 'PF_DATABASE_UNAVAILABLE', error.message);
      assert.equal(report.exitCode, EXIT.unavailable, error.message);
    }
  });
});
