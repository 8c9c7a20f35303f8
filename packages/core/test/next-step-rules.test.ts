import assert from 'node:assert/strict';
import { decideNext, PHASES, type Phase } from '../src/index.js';
import { CLEAN, OFF, ON, PART, U, facts, flags, instance, summary } from './fixtures/decisions.js';

describe('decideNext: the controller decision table', () => {
  it('after read-old, goes back to read-new only once the flag was seen off and on again', () => {
    const base = { facts: facts('verified', { verify: CLEAN }), backfillRunning: false };
    const held = decideNext({ ...base, flags: flags(ON, ON, ON, OFF), readsHeld: true });
    assert.equal(held.kind, 'refuse');
    assert.match((held as { hint: string }).hint, /off and on again|phaseflag read-new/);
    assert.equal(
      summary(decideNext({ ...base, flags: flags(ON, ON, OFF, OFF), readsHeld: true })),
      'act:release-reads',
    );
    // Released (the executor cleared reads_held_at): the flag is a new intent again.
    assert.equal(summary(decideNext({ ...base, flags: flags(ON, ON, OFF, OFF), readsHeld: false })), 'none');
    assert.equal(summary(decideNext({ ...base, flags: flags(ON, ON, ON, OFF), readsHeld: false })), 'act:read-new');
  });

  it('names the flag that caused each step, and the guard reason on a fact refusal', () => {
    const step = decideNext({
      facts: facts('dual-write', { triggerInstalled: false, liveInstances: [instance('b', { writesNew: false })] }),
      flags: flags(ON, ON, OFF, OFF),
      backfillRunning: false,
    });
    assert.equal(step.kind, 'refuse');
    assert.equal((step as { flag: string }).flag, 'backfill');
    assert.match((step as { reason: string }).reason, /\bb\b/);
    const read = decideNext({
      facts: facts('verified', { verify: CLEAN }),
      flags: flags(ON, ON, ON, OFF),
      backfillRunning: false,
    });
    assert.deepEqual([read.kind, (read as { flag: string }).flag], ['act', 'readNew']);
    const verify = decideNext({ facts: facts('backfilled'), flags: flags(U, U, U, U), backfillRunning: false });
    assert.equal((verify as { flag: unknown }).flag, null, "verify is the phase's doing, not a flag's");
  });

  it('never moves any phase when every flag is unknown, except verify after a finished backfill', () => {
    for (const phase of PHASES) {
      for (const running of [false, true]) {
        const step = decideNext({
          facts: facts(phase, { verify: CLEAN }),
          flags: flags(U, U, U, U),
          backfillRunning: running,
        });
        if (phase === 'backfilled') assert.equal(summary(step), 'act:verify');
        else assert.notEqual(step.kind, 'act', `${phase}: ${JSON.stringify(step)}`);
        assert.notEqual(step.kind, 'refuse', 'nothing to refuse when nothing is known');
      }
    }
  });

  it('never lets read-new happen before verified, whatever the flags', () => {
    const all = [U, OFF, PART, ON];
    for (const phase of ['pending', 'expanded', 'dual-write', 'backfilling', 'paused', 'backfilled'] as Phase[]) {
      for (const a of all)
        for (const b of all)
          for (const c of all)
            for (const d of all) {
              const step = decideNext({ facts: facts(phase), flags: flags(a, b, c, d), backfillRunning: false });
              assert.ok(
                !(step.kind === 'act' && (step.action === 'read-new' || step.action === 'contract')),
                `${phase}: ${JSON.stringify(step)}`,
              );
            }
    }
  });
});
