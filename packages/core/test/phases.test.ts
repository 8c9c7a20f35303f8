import assert from 'node:assert/strict';
import { decideTransition, TRANSITIONS, PHASES, type GuardFacts, type Phase } from '../src/index.js';
import { facts } from './fixtures/decisions.js';

describe('phase state machine', () => {
  it('walks the happy path in order', () => {
    const path: Array<[Parameters<typeof decideTransition>[0], Phase, Partial<GuardFacts>]> = [
      ['expand', 'pending', {}],
      ['dual-write', 'expanded', {}],
      ['backfill', 'dual-write', {}],
      ['complete-backfill', 'backfilling', { backfillComplete: true }],
      ['verify', 'backfilled', { backfillComplete: true, verify: { clean: true, mismatches: 0, afterBackfill: true } }],
      ['read-new', 'verified', { verify: { clean: true, mismatches: 0, afterBackfill: true } }],
      ['contract', 'read-new', { confirmed: true }],
    ];
    const seen: Phase[] = [];
    for (const [action, from, extra] of path) {
      const d = decideTransition(action, facts(from, extra));
      assert.ok(d.allowed, `${action} from ${from}: ${'reason' in d ? d.reason : ''}`);
      seen.push(d.to);
    }
    assert.deepEqual(seen, [
      'expanded',
      'dual-write',
      'backfilling',
      'backfilled',
      'verified',
      'read-new',
      'contracted',
    ]);
  });

  it('refuses read-new before a clean verify, whatever is asked', () => {
    for (const phase of ['dual-write', 'backfilling', 'backfilled'] as Phase[]) {
      assert.equal(decideTransition('read-new', facts(phase)).allowed, false);
    }
    const dirty = decideTransition(
      'verify',
      facts('backfilled', { backfillComplete: true, verify: { clean: false, mismatches: 3, afterBackfill: true } }),
    );
    assert.equal(dirty.allowed, false);
    assert.match((dirty as { reason: string }).reason, /3 row/);
  });

  it('refuses the backfill without the trigger until every live instance writes both columns', () => {
    const noTrigger = { triggerInstalled: false };
    assert.equal(decideTransition('backfill', facts('dual-write', noTrigger)).allowed, false);
    const lagging = decideTransition(
      'backfill',
      facts('dual-write', {
        ...noTrigger,
        liveInstances: [
          { instanceId: 'a', phase: 'dual-write', writesOld: true, writesNew: true, readsOld: true },
          { instanceId: 'b', phase: 'expanded', writesOld: true, writesNew: false, readsOld: true },
        ],
      }),
    );
    assert.equal(lagging.allowed, false);
    assert.match((lagging as { reason: string }).reason, /\bb\b/);
  });

  it('needs confirmation to contract, and contracted is final', () => {
    assert.equal(decideTransition('contract', facts('read-new')).allowed, false);
    const readers = decideTransition(
      'contract',
      facts('read-new', {
        confirmed: true,
        liveInstances: [{ instanceId: 'x', phase: 'read-new', writesOld: true, writesNew: true, readsOld: true }],
      }),
    );
    assert.equal(readers.allowed, false);
    const back = decideTransition('rollback', facts('contracted'));
    assert.equal(back.allowed, false);
    assert.match((back as { reason: string }).reason, /final/);
  });

  it('allows rollback from every phase before contracted', () => {
    for (const phase of PHASES) {
      const d = decideTransition('rollback', facts(phase));
      const expected = !['pending', 'contracted', 'rolled-back'].includes(phase);
      assert.equal(d.allowed, expected, phase);
    }
  });

  it('refuses expand while another migration holds the column', () => {
    const d = decideTransition('expand', facts('pending', { conflicts: ['other'] }));
    assert.equal(d.allowed, false);
  });

  it('has exactly one rule per action', () => {
    assert.equal(new Set(TRANSITIONS.map((t) => t.action)).size, TRANSITIONS.length);
  });

  it('repairs only from backfilled after a verify that was not clean, back to backfilling', () => {
    const dirty = { clean: false, mismatches: 3, afterBackfill: true };
    const d = decideTransition('repair', facts('backfilled', { backfillComplete: true, verify: dirty }));
    assert.ok(d.allowed);
    assert.equal(d.to, 'backfilling');
    assert.equal(
      decideTransition('repair', facts('backfilled', { backfillComplete: true, verify: null })).allowed,
      false,
    );
    assert.equal(
      decideTransition(
        'repair',
        facts('backfilled', { backfillComplete: true, verify: { clean: true, mismatches: 0, afterBackfill: true } }),
      ).allowed,
      false,
    );
    assert.equal(decideTransition('repair', facts('verified', { verify: dirty })).allowed, false);
    const refused = decideTransition('verify', facts('backfilled', { backfillComplete: true, verify: dirty }));
    assert.ok(
      !refused.allowed && /phaseflag repair <id>/.test(refused.hint) && /repair\(\)/.test(refused.hint),
      'the verify refusal names repair',
    );
  });

  it('lets a migration with nothing to sync (a brand-new column) backfill without a trigger', () => {
    assert.equal(decideTransition('backfill', facts('dual-write', { triggerInstalled: false })).allowed, false);
    assert.ok(
      decideTransition('backfill', facts('dual-write', { triggerInstalled: false, nothingToSync: true })).allowed,
    );
  });
});
