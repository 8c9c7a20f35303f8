import assert from 'node:assert/strict';
import { ERROR_CODES, errorClassOf, isPhaseflagError } from '@phaseflag/core';
import { UnleashRejectedError, UnleashUnavailableError } from '../src/index.js';

describe('Unleash errors', () => {
  it("are the classes core's error table names for their codes, and the only ones it gives to this package", () => {
    const unavailable = new UnleashUnavailableError('m', { hint: 'h', url: 'http://127.0.0.1:4242' });
    const rejected = new UnleashRejectedError('m', { hint: 'h', status: 403, body: '', request: 'GET /api/admin' });
    for (const error of [unavailable, rejected]) {
      assert.equal(error.name, errorClassOf(error.code));
      assert.ok(isPhaseflagError(error, error.code));
    }
    const ours = ERROR_CODES.filter((c) => errorClassOf(c).startsWith('Unleash'));
    assert.deepEqual(ours.sort(), [rejected.code, unavailable.code].sort());
  });
});
