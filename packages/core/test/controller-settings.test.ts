import assert from 'node:assert/strict';
import {
  defineMigration,
  featureFlagAttributes,
  isPhaseflagError,
  parseControllerSettings,
  PHASE_FLAGS,
} from '../src/index.js';
import { flags } from './fixtures/decisions.js';

describe('controller settings and feature-flag attributes', () => {
  it('defaults the interval to 5 s and never drops the old column unless told', () => {
    assert.deepEqual(parseControllerSettings({}), { intervalMs: 5000, dropOldColumn: false });
    assert.throws(
      () => parseControllerSettings({ intervalMs: 0 }),
      (e: unknown) => isPhaseflagError(e, 'PF_INVALID_OPTIONS'),
    );
  });

  it('uses the current OpenTelemetry names, never the deprecated ones', () => {
    const attrs = featureFlagAttributes('m.read-new', { enabled: true, fullyOn: false, version: '42' }, 'unleash');
    assert.deepEqual(attrs, {
      'feature_flag.key': 'm.read-new',
      'feature_flag.provider.name': 'unleash',
      'feature_flag.result.value': true,
      'feature_flag.result.reason': 'split',
      'feature_flag.version': '42',
    });
    const unknown = featureFlagAttributes('m.read-new', undefined, 'unleash');
    assert.equal(unknown['feature_flag.result.value'], undefined);
    assert.match(String(unknown['feature_flag.error.message']), /unknown/);
    for (const a of [attrs, unknown]) assert.ok(!('feature_flag.provider_name' in a) && !('feature_flag.variant' in a));
  });
});

describe('PHASE_FLAGS', () => {
  it("lists each of a migration's four flags once, in phase order", () => {
    const m = defineMigration({
      id: 'orders-amount',
      table: 'orders',
      oldColumn: 'amount_cents',
      newColumn: { name: 'amount', type: 'numeric(12,2)' },
      backfill: 'amount_cents / 100.0',
    });
    assert.deepEqual([...PHASE_FLAGS], ['dualWrite', 'backfill', 'readNew', 'contract']);
    assert.deepEqual([...PHASE_FLAGS].sort(), Object.keys(m.flags).sort());
    assert.deepEqual(Object.keys(flags()).sort(), [...PHASE_FLAGS].sort());
    assert.ok(Object.isFrozen(PHASE_FLAGS));
  });
});
