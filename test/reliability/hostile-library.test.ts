import assert from 'node:assert/strict';
import { defineMigration, isPhaseflagError, StaticFlagSource } from '@phaseflag/core';
import { Phaseflag, type KnexRouter, type MigrationHandle } from '@phaseflag/postgres';
import { createSuiteSchema, type Suite } from '@phaseflag/testkit';
import { recordFinding } from './record.js';
import { backfillOptionCases, BASE, libraryCases, type HostileCase } from './support/hostile-cases.js';
import { databaseSnapshot } from './support/hostile-snapshot.js';

/**
 * Hostile declarations and options through the library: each is refused with its stable code, and the suite's
 * schemas (schema-only dump and an md5 of every table's ordered rows) are byte-identical before and after.
 */
describe('reliability: hostile inputs to the library change nothing', function () {
  let suite: Suite;
  let pf: Phaseflag;
  let live: MigrationHandle;
  let router: KnexRouter;
  let snapshot: () => Promise<string>;

  before(async () => {
    suite = await createSuiteSchema('rel_hostile_lib');
    await suite.knex.raw(
      'CREATE TABLE orders (id bigserial PRIMARY KEY, amount_cents integer NOT NULL, price_cents integer NOT NULL DEFAULT 0, note text)',
    );
    await suite.knex.raw('INSERT INTO orders (amount_cents) SELECT g * 7 FROM generate_series(1, 50) AS g');
    pf = new Phaseflag({ knex: suite.knex, stateSchema: suite.stateSchema, pollIntervalMs: 100, graceMs: 0 });
    await pf.install();
    // A migration in dual-write on its own column, for the options the running operations take.
    live = pf.migration(
      defineMigration({
        ...BASE,
        id: 'hostile-live',
        newColumn: { name: 'amount_live', type: 'numeric(12,2)' },
        reverse: '(amount_live * 100)::integer',
      }),
    );
    await live.expand();
    await live.startDualWrite();
    router = await live.router(new StaticFlagSource({}), { heartbeatMs: 0 });
    snapshot = () => databaseSnapshot(suite.knex, suite.databaseUrl, [suite.schema, suite.stateSchema]);
  });

  after(async () => {
    await pf?.close();
    await suite?.cleanup();
  });

  /** Runs `cases` one by one: the code each is refused with, and the schemas after each against before it. */
  async function attempt(cases: HostileCase[]): Promise<void> {
    let before = await snapshot();
    const wrong: string[] = [];
    const changed: string[] = [];
    for (const c of cases) {
      let error: unknown;
      try {
        await c.attempt();
      } catch (e) {
        error = e;
      }
      if (!isPhaseflagError(error) || error.code !== c.code)
        wrong.push(
          `${c.kind} ${c.what}: expected ${c.code}, got ${isPhaseflagError(error) ? error.code : String(error)}`,
        );
      else assert.ok(error.hint.length > 10, `${c.what}: a hint`);
      const after = await snapshot();
      if (after !== before) changed.push(`${c.kind} ${c.what}`);
      before = after;
    }
    assert.deepEqual(wrong, [], 'each hostile input is refused with its stable code');
    assert.deepEqual(changed, [], 'the database is byte-identical after each');
  }

  it('refuses each with its code and leaves the database byte-identical', async () => {
    const cases: HostileCase[] = libraryCases(pf, suite.knex, live, router);
    await attempt(cases);
    const kinds = (k: HostileCase['kind']) => cases.filter((c) => c.kind === k).length;
    assert.ok(cases.length >= 40, `${cases.length} cases`);
    recordFinding({
      section: 'Hostile input',
      line:
        `${cases.length} hostile library inputs (${kinds('identifier')} identifiers, ${kinds('expression')} expressions, ` +
        `${kinds('type')} types, ${kinds('option')} options): each refused with its stable code; schema dump and row ` +
        `checksums byte-identical after every one: 0 rows lost, 0 wrong rows, 0 objects changed`,
      figures: { cases: cases.length, changed: 0, wrongCodes: 0 },
    });
  });

  it('refuses bad run-time backfill options before the phase moves', async () => {
    const cases = backfillOptionCases(live);
    await attempt(cases);
    recordFinding({
      section: 'Hostile input',
      line: `${cases.length} bad run-time backfill options on a migration in dual-write: each refused with PF_INVALID_OPTIONS before the phase moved; the database byte-identical after each: 0 rows lost, 0 wrong rows`,
      figures: { cases: cases.length, changed: 0 },
    });
  });
});
