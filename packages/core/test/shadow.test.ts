import assert from 'node:assert/strict';
import {
  decideNext,
  decideTransition,
  defineMigration,
  isPhaseflagError,
  Router,
  StaticFlagSource,
  type ShadowFacts,
} from '../src/index.js';
import { CLEAN, facts, flags, OFF, ON } from './fixtures/decisions.js';

const settings = { flag: 'm.shadow', sampleRatio: 1, minCompared: 100, minMatchRate: 1 };
const shadow = (compared: number, mismatched: number, extra: Partial<ShadowFacts> = {}): ShadowFacts => ({
  settings,
  compared,
  mismatched,
  firstMismatch:
    mismatched > 0 ? { key: [42], old: '1250', new: '99.00', at: '2026-12-07T08:00:00.000Z', instanceId: 'a' } : null,
  ...extra,
});

describe('shadow reads: the read-new guard', () => {
  it('needs the minimum of compared rows when shadow is declared, and lets read-new pass once they matched', () => {
    const few = decideTransition('read-new', facts('verified', { verify: CLEAN, shadow: shadow(99, 0) }));
    assert.ok(!few.allowed);
    assert.match(few.reason, /not compared enough rows .*at least 100/);
    assert.match(few.hint, /99 row\(s\) compared, 0 mismatched/);
    assert.match(few.hint, /"m\.shadow"/);
    assert.ok(decideTransition('read-new', facts('verified', { verify: CLEAN, shadow: shadow(100, 0) })).allowed);
  });

  it('refuses read-new with the mismatch named (key, old value, new value), whatever the count', () => {
    const d = decideTransition('read-new', facts('verified', { verify: CLEAN, shadow: shadow(5000, 1) }));
    assert.ok(!d.allowed);
    assert.match(d.reason, /key \[42\], old value "1250", new value "99\.00"/);
    assert.match(d.hint, /5000 row\(s\) compared, 1 mismatched \(match rate 99\.98%/);
    assert.match(d.hint, /phaseflag repair <id>/);
  });

  it('tolerates mismatches down to minMatchRate, and keeps the reason stable while counts grow', () => {
    const lenient = { ...settings, minMatchRate: 0.99 };
    assert.ok(
      decideTransition(
        'read-new',
        facts('verified', { verify: CLEAN, shadow: shadow(1000, 10, { settings: lenient }) }),
      ).allowed,
    );
    const a = decideTransition('read-new', facts('verified', { verify: CLEAN, shadow: shadow(1000, 11) }));
    const b = decideTransition('read-new', facts('verified', { verify: CLEAN, shadow: shadow(2000, 30) }));
    assert.ok(!a.allowed && !b.allowed);
    assert.equal(a.reason, b.reason, 'a controller records one refusal per reason');
  });

  it('leaves migrations without shadow unchanged', () => {
    assert.ok(decideTransition('read-new', facts('verified', { verify: CLEAN })).allowed);
  });

  it('lets repair run from verified only when shadow reads found a row that differs', () => {
    const d = decideTransition('repair', facts('verified', { verify: CLEAN, shadow: shadow(10, 1) }));
    assert.ok(d.allowed);
    assert.equal(d.to, 'backfilling');
    assert.equal(
      decideTransition('repair', facts('verified', { verify: CLEAN, shadow: shadow(10, 0) })).allowed,
      false,
    );
    assert.equal(decideTransition('repair', facts('verified', { verify: CLEAN })).allowed, false);
  });

  it('makes the controller refuse the read-new flag with the guard reason, and act once the reads matched', () => {
    const refused = decideNext({
      facts: facts('verified', { verify: CLEAN, shadow: shadow(10, 1) }),
      flags: flags(ON, ON, ON, OFF),
      backfillRunning: false,
    });
    assert.equal(refused.kind, 'refuse');
    assert.ok(refused.kind === 'refuse' && refused.code === 'guard' && /key \[42\]/.test(refused.reason));
    const act = decideNext({
      facts: facts('verified', { verify: CLEAN, shadow: shadow(100, 0) }),
      flags: flags(ON, ON, ON, OFF),
      backfillRunning: false,
    });
    assert.ok(act.kind === 'act' && act.action === 'read-new');
  });
});

describe('shadow reads: the declaration and the router', () => {
  const base = {
    id: 'orders-amount',
    table: 'orders',
    oldColumn: 'amount_cents',
    newColumn: { name: 'amount', type: 'numeric(12,2)' },
    backfill: 'amount_cents::numeric / 100',
  };

  it('is off unless declared; `true` takes the defaults and the flag is <id>.shadow', () => {
    assert.equal(defineMigration(base).shadow, null);
    assert.deepEqual(defineMigration({ ...base, shadow: true }).shadow, {
      flag: 'orders-amount.shadow',
      sampleRatio: 1,
      minCompared: 1000,
      minMatchRate: 1,
    });
    const m = defineMigration({ ...base, shadow: { sampleRatio: 0.1, minCompared: 50, flag: 'x' } });
    assert.deepEqual(m.shadow, { flag: 'x', sampleRatio: 0.1, minCompared: 50, minMatchRate: 1 });
  });

  it('refuses shadow with nothing to compare, a ratio out of range, or a flag name another phase uses', () => {
    const bad = [
      { ...base, backfill: null, shadow: true as const },
      { ...base, shadow: { sampleRatio: 0 } },
      { ...base, shadow: { minMatchRate: 1.5 } },
      { ...base, shadow: { flag: 'orders-amount.read-new' } },
    ];
    for (const input of bad) {
      assert.throws(
        () => defineMigration(input),
        (e) => isPhaseflagError(e, 'PF_INVALID_MIGRATION'),
      );
    }
  });

  it('compares only in verified, with the shadow flag on for the request, at the sampling ratio', () => {
    const m = defineMigration({ ...base, shadow: { sampleRatio: 0.5 } });
    const source = new StaticFlagSource({ 'orders-amount.shadow': true });
    let draw = 0.2;
    const r = new Router(m, {
      flags: source,
      snapshot: { migrationId: m.id, phase: 'verified', version: 7 },
      random: () => draw,
    });
    assert.equal(r.shadows(), true);
    draw = 0.7;
    assert.equal(r.shadows(), false, 'outside the sample');
    draw = 0.2;
    source.set('orders-amount.shadow', undefined);
    assert.equal(r.shadows(), false, 'an unknown flag compares nothing');
    source.set('orders-amount.shadow', true);
    r.holdReads(true);
    assert.equal(r.shadows(), false, 'a held router (a lagging replica) compares nothing');
    r.holdReads(false);
    for (const phase of ['backfilled', 'read-new', 'contracted'] as const) {
      r.update({ migrationId: m.id, phase, version: 8 });
      assert.equal(r.shadows(), false, phase);
    }
    assert.equal(r.decide().read, 'new', 'contracted reads new, shadow or not');
  });
});
