import assert from 'node:assert/strict';
import {
  defineMigration,
  Derived,
  readsNewColumn,
  Router,
  StaticFlagSource,
  PHASES,
  type Phase,
} from '../src/index.js';

const migration = defineMigration({
  id: 'users-email',
  table: 'users',
  oldColumn: 'email',
  newColumn: { name: 'email_normalized', type: 'text' },
  backfill: 'lower(email)',
  reverse: 'email_normalized',
});

function routerAt(phase: Phase | 'unknown', flags: Record<string, boolean> = {}): Router {
  return new Router(migration, {
    flags: new StaticFlagSource(flags),
    snapshot: { migrationId: migration.id, phase, version: 1 },
  });
}

describe('Router', () => {
  it('reads the new column only in read-new with the flag on, and in contracted, whatever the flags say', () => {
    const on = { 'users-email.read-new': true };
    for (const phase of PHASES) {
      const r = routerAt(phase, on);
      const expected = phase === 'read-new' || phase === 'contracted' ? 'email_normalized' : 'email';
      assert.equal(r.readColumn(), expected, phase);
    }
    assert.equal(routerAt('unknown', on).readColumn(), 'email');
  });

  it('a read hold keeps read-new on the old column (counted as old reads), never writes or contracted', () => {
    const on = { 'users-email.read-new': true };
    const r = routerAt('read-new', on);
    r.holdReads(true);
    assert.equal(r.readsHeld, true);
    assert.equal(r.readColumn(), 'email');
    assert.deepEqual(r.decide(), { read: 'old', readColumn: 'email', writeOld: true, writeNew: true });
    assert.deepEqual(r.takeReadCounts(), { oldReads: 1, newReads: 0 });
    r.holdReads(false);
    assert.equal(r.readColumn(), 'email_normalized');
    const contracted = routerAt('contracted', on);
    contracted.holdReads(true);
    assert.equal(contracted.readColumn(), 'email_normalized', 'the old column is no longer written in contracted');
  });

  it('reads old in verified with the read-new flag on: read-old sends every read back by itself', () => {
    const flags = new StaticFlagSource({ 'users-email.read-new': true });
    const r = new Router(migration, { flags, snapshot: { migrationId: migration.id, phase: 'read-new', version: 1 } });
    assert.equal(r.readColumn({ userId: 'u1' }), 'email_normalized');
    r.update({ migrationId: migration.id, phase: 'verified', version: 2 }); // readOld(): read-new → verified
    assert.equal(r.readColumn({ userId: 'u1' }), 'email');
    assert.deepEqual({ ...r.decide() }, { read: 'old', readColumn: 'email', writeOld: true, writeNew: true });
  });

  it('states the read rule as one function over phase × flag', () => {
    for (const phase of [...PHASES, 'unknown' as const]) {
      for (const flag of [true, false, undefined]) {
        const expected = phase === 'contracted' || (phase === 'read-new' && flag === true);
        assert.equal(readsNewColumn(phase, flag), expected, `${phase} × ${flag}`);
        assert.equal(
          routerAt(phase, flag === undefined ? {} : { 'users-email.read-new': flag }).decide().read,
          expected ? 'new' : 'old',
          `router: ${phase} × ${flag}`,
        );
      }
    }
  });

  it('reads old when the read-new flag is off or unknown (fail safe)', () => {
    assert.equal(routerAt('read-new', { 'users-email.read-new': false }).readColumn(), 'email');
    assert.equal(routerAt('read-new', {}).readColumn(), 'email');
  });

  it('writes both columns from dual-write until contract, deriving the missing side', () => {
    const r = routerAt('backfilling');
    const out = r.writeValues({ id: 1, email: 'A@X.io' });
    assert.equal(out.email, 'A@X.io');
    assert.ok(out.email_normalized instanceof Derived);
    assert.equal(out.email_normalized.expression, 'lower(email)');
    const back = r.writeValues({ id: 1, email_normalized: 'a@x.io' });
    assert.ok(back.email instanceof Derived, 'reverse expression keeps the old column right');
    const both = r.writeValues({ id: 1, email: 'B@x', email_normalized: 'b@x' });
    assert.deepEqual(both, { id: 1, email: 'B@x', email_normalized: 'b@x' });
  });

  it('does not write the new column before dual-write, and not the old one after contract', () => {
    assert.deepEqual(routerAt('expanded').writeValues({ id: 1, email: 'a', email_normalized: 'a' }), {
      id: 1,
      email: 'a',
    });
    const after = routerAt('contracted').writeValues({ id: 1, email: 'A' });
    assert.ok(after.email_normalized instanceof Derived);
    assert.equal('email' in after, false);
  });

  it('keeps the last known phase when the store answers unknown, and ignores stale versions', () => {
    const r = routerAt('dual-write');
    r.update({ migrationId: migration.id, phase: 'unknown', version: 5 });
    assert.equal(r.currentPhase, 'dual-write');
    r.update({ migrationId: migration.id, phase: 'verified', version: 3 });
    r.update({ migrationId: migration.id, phase: 'backfilling', version: 2 });
    assert.equal(r.currentPhase, 'verified');
  });

  it('decides by returning shared objects (no allocation per call)', () => {
    const r = routerAt('read-new', { 'users-email.read-new': true });
    assert.equal(r.decide(), r.decide());
  });

  it('counts reads per side for heartbeats', () => {
    const flags = new StaticFlagSource({ 'users-email.read-new': true });
    const r = new Router(migration, { flags, snapshot: { migrationId: migration.id, phase: 'read-new', version: 1 } });
    r.readColumn();
    flags.set('users-email.read-new', false);
    r.readColumn();
    r.readColumn();
    assert.deepEqual(r.takeReadCounts(), { oldReads: 2, newReads: 1 });
    assert.deepEqual(r.takeReadCounts(), { oldReads: 0, newReads: 0 });
  });

  it('keeps writing the source of a derived column after contract, and reads the derived column', () => {
    const derived = defineMigration({
      id: 'users-lower',
      table: 'users',
      oldColumn: 'email',
      intent: 'derive',
      newColumn: { name: 'email_lower', type: 'text' },
      backfill: 'lower(email)',
    });
    const r = new Router(derived, {
      flags: new StaticFlagSource({}),
      snapshot: { migrationId: derived.id, phase: 'contracted', version: 1 },
    });
    const d = r.decide();
    assert.equal(d.readColumn, 'email_lower');
    assert.equal(d.writeOld, true);
    const values = r.writeValues({ id: 1, email: 'A@B' });
    assert.equal(values.email, 'A@B');
    assert.ok(values.email_lower instanceof Derived);
  });
});
