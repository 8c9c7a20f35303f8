import assert from 'node:assert/strict';
import { decideNext, type GuardFacts, type Phase, type PhaseFlagStates } from '../src/index.js';
import { CLEAN, OFF, ON, PART, U, facts, flags, instance, summary } from './fixtures/decisions.js';

type Row = [
  string,
  Phase,
  PhaseFlagStates,
  string,
  { running?: boolean; held?: boolean; facts?: Partial<GuardFacts> }?,
];

const TABLE: Row[] = [
  // Forward, one step per flag.
  ['pending + dual-write on → expand', 'pending', flags(ON, OFF, OFF, OFF), 'act:expand'],
  ['expanded + dual-write on → dual-write', 'expanded', flags(ON, OFF, OFF, OFF), 'act:dual-write'],
  ['a partial dual-write flag counts as on', 'expanded', flags(PART, OFF, OFF, OFF), 'act:dual-write'],
  ['dual-write + backfill on → backfill', 'dual-write', flags(ON, ON, OFF, OFF), 'act:backfill'],
  [
    'backfilling without a runner here → run it (leader died)',
    'backfilling',
    flags(ON, ON, OFF, OFF),
    'act:run-backfill',
  ],
  ['backfilling with its runner → nothing', 'backfilling', flags(ON, ON, OFF, OFF), 'none', { running: true }],
  ['backfilled → verify, whatever the flags', 'backfilled', flags(U, U, U, U), 'act:verify'],
  ['verified + read-new on → read-new', 'verified', flags(ON, ON, ON, OFF), 'act:read-new'],
  [
    'verified + read-new partly on → read-new (requests decide)',
    'verified',
    flags(ON, ON, PART, OFF),
    'act:read-new',
    { facts: { verify: CLEAN } },
  ],
  ['read-new + contract fully on + read-new fully on → contract', 'read-new', flags(ON, ON, ON, ON), 'act:contract'],
  // Backwards.
  ['dual-write + dual-write off → stop-dual-write', 'dual-write', flags(OFF, OFF, OFF, OFF), 'act:stop-dual-write'],
  ['dual-write off beats backfill on in dual-write', 'dual-write', flags(OFF, ON, OFF, OFF), 'act:stop-dual-write'],
  [
    'backfilling + backfill off → pause (runner running)',
    'backfilling',
    flags(ON, OFF, OFF, OFF),
    'act:pause',
    { running: true },
  ],
  ['paused + backfill on → resume', 'paused', flags(ON, ON, OFF, OFF), 'act:resume'],
  ['paused + backfill off → nothing', 'paused', flags(ON, OFF, OFF, OFF), 'none'],
  [
    'paused by a row the backfill cannot derive + backfill on → no resume (it would stop again)',
    'paused',
    flags(ON, ON, OFF, OFF),
    'none',
    { facts: { underivable: { count: 1, firstKey: [7], stoppedBackfill: 1 } } },
  ],
  [
    'paused, with rows only the preflight or trigger recorded + backfill on → resume',
    'paused',
    flags(ON, ON, OFF, OFF),
    'act:resume',
    { facts: { underivable: { count: 3, firstKey: [7], stoppedBackfill: 0 } } },
  ],
  ['read-new + read-new off → read-old', 'read-new', flags(ON, ON, OFF, ON), 'act:read-old'],
  // Waiting.
  ['pending + dual-write off → nothing', 'pending', flags(OFF, OFF, OFF, OFF), 'none'],
  ['dual-write + backfill off → nothing', 'dual-write', flags(ON, OFF, OFF, OFF), 'none'],
  ['verified + read-new off → nothing', 'verified', flags(ON, ON, OFF, OFF), 'none'],
  ['read-new + contract off → nothing', 'read-new', flags(ON, ON, ON, OFF), 'none'],
  ['contracted is final', 'contracted', flags(ON, ON, ON, ON), 'none'],
  ['rolled-back stays rolled back with dual-write on', 'rolled-back', flags(ON, ON, ON, ON), 'none'],
  [
    'a dirty verify is not re-run automatically',
    'backfilled',
    flags(ON, ON, OFF, OFF),
    'none',
    { facts: { verify: { clean: false, mismatches: 3, afterBackfill: true } } },
  ],
  // Unknown never moves anything.
  ['pending + dual-write unknown', 'pending', flags(U, ON, ON, ON), 'unknown:dualWrite'],
  ['dual-write + dual-write unknown', 'dual-write', flags(U, ON, OFF, OFF), 'unknown:dualWrite'],
  ['dual-write + backfill unknown', 'dual-write', flags(ON, U, OFF, OFF), 'unknown:backfill'],
  [
    'backfilling + backfill unknown: no pause, no new runner',
    'backfilling',
    flags(ON, U, OFF, OFF),
    'unknown:backfill',
  ],
  ['paused + backfill unknown: no resume', 'paused', flags(ON, U, OFF, OFF), 'unknown:backfill'],
  ['verified + read-new unknown', 'verified', flags(ON, ON, U, OFF), 'unknown:readNew'],
  ['read-new + read-new unknown: no read-old, no contract', 'read-new', flags(ON, ON, U, ON), 'unknown:readNew'],
  ['read-new + contract unknown', 'read-new', flags(ON, ON, ON, U), 'unknown:contract'],
  // Refused: recorded once by the controller.
  [
    'read-new on in dual-write → refused',
    'dual-write',
    flags(ON, OFF, ON, OFF),
    'refuse:read-new:read-new-before-verified',
  ],
  [
    'read-new on while backfilling → refused, the runner goes on',
    'backfilling',
    flags(ON, ON, ON, OFF),
    'refuse:read-new:read-new-before-verified',
    { running: true },
  ],
  [
    'read-new on in pending (stale bootstrap) → refused',
    'pending',
    flags(OFF, OFF, ON, OFF),
    'refuse:read-new:read-new-before-verified',
  ],
  ['an action comes before a refusal', 'dual-write', flags(ON, ON, ON, OFF), 'act:backfill'],
  [
    'contract on while read-new is partly rolled out → refused',
    'read-new',
    flags(ON, ON, PART, ON),
    'refuse:contract:contract-before-read-new-fully-on',
  ],
  ['contract partly on → refused', 'read-new', flags(ON, ON, ON, PART), 'refuse:contract:contract-not-fully-on'],
  [
    'contract on before read-new → refused',
    'verified',
    flags(ON, ON, OFF, ON),
    'refuse:contract:contract-before-read-new',
  ],
  [
    'dual-write off while reads use the new column → refused',
    'read-new',
    flags(OFF, ON, ON, OFF),
    'refuse:stop-dual-write:dual-write-off-reads-new',
  ],
  [
    'dual-write off after the backfill started → refused',
    'verified',
    flags(OFF, ON, OFF, OFF),
    'refuse:stop-dual-write:dual-write-off-after-backfill',
  ],
  // Guards over facts (fleet acknowledgement).
  [
    'backfill waits for an instance that does not write both (trigger off)',
    'dual-write',
    flags(ON, ON, OFF, OFF),
    'refuse:backfill:guard',
    {
      facts: {
        triggerInstalled: false,
        liveInstances: [instance('a'), instance('b', { phase: 'expanded', writesNew: false })],
      },
    },
  ],
  [
    'backfill goes once every live instance writes both (trigger off)',
    'dual-write',
    flags(ON, ON, OFF, OFF),
    'act:backfill',
    { facts: { triggerInstalled: false, liveInstances: [instance('a'), instance('b')] } },
  ],
  [
    'contract waits while a live instance reads the old column',
    'read-new',
    flags(ON, ON, ON, ON),
    'refuse:contract:guard',
    { facts: { liveInstances: [instance('a', { readsOld: true })] } },
  ],
  // The emergency lever: readOld() by hand holds reads on the old column until read-new is asked for again.
  [
    'read-old held + read-new still on → refused, stays verified',
    'verified',
    flags(ON, ON, ON, OFF),
    'refuse:read-new:read-new-held',
    { held: true },
  ],
  [
    'read-old held + read-new partly on → refused',
    'verified',
    flags(ON, ON, PART, OFF),
    'refuse:read-new:read-new-held',
    { held: true },
  ],
  [
    'read-old held + read-new off → the hold is released',
    'verified',
    flags(ON, ON, OFF, OFF),
    'act:release-reads',
    { held: true },
  ],
  ['read-old held + read-new unknown → nothing', 'verified', flags(ON, ON, U, OFF), 'unknown:readNew', { held: true }],
  [
    'expand refused while another migration holds the column',
    'pending',
    flags(ON, OFF, OFF, OFF),
    'refuse:expand:guard',
    { facts: { conflicts: ['other'] } },
  ],
];

describe('decideNext: the controller decision table', () => {
  for (const [name, phase, f, expected, extra] of TABLE) {
    it(name, () => {
      const verify = phase === 'verified' || phase === 'read-new' ? CLEAN : null;
      const step = decideNext({
        facts: facts(phase, { verify, ...extra?.facts }),
        flags: f,
        backfillRunning: extra?.running ?? false,
        readsHeld: extra?.held,
      });
      assert.equal(summary(step), expected, JSON.stringify(step));
    });
  }
});
