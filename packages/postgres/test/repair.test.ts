import assert from 'node:assert/strict';
import { ATTR, SPAN, defineMigration, type Migration } from '@phaseflag/core';
import { amountInput, captureSpans, createSuiteSchema, type Suite } from '@phaseflag/testkit';
import { Phaseflag } from '../src/index.js';
import { internalsOf } from '../src/internal.js';

describe('repair after a failed verify: the rows that differ are re-derived and verify passes', function () {
  this.timeout(120_000);
  const spans = captureSpans();
  let suite: Suite;
  let pf: Phaseflag;

  before(async () => {
    suite = await createSuiteSchema('repair');
    pf = new Phaseflag({ knex: suite.knex, stateSchema: suite.stateSchema, pollIntervalMs: 100, graceMs: 0 });
    await pf.install();
  });
  after(async () => {
    await pf?.close();
    await suite?.cleanup();
  });

  const createTable = async (table: string, rows: number) => {
    await suite.knex.raw('CREATE TABLE ?? (id bigserial PRIMARY KEY, amount_cents integer NOT NULL)', [table]);
    await suite.knex.raw('INSERT INTO ?? (amount_cents) SELECT g * 7 FROM generate_series(1, ?::int) AS g', [
      table,
      rows,
    ]);
  };
  /** Backfilled, then rows changed by a writer that bypasses the sync trigger (replica mode skips triggers). */
  const backfilledWithDrift = async (m: Migration, table: string, everyNth: number) => {
    const h = pf.migration(m);
    await h.expand();
    await h.startDualWrite();
    await h.backfill({ batch: { size: 700 } });
    const planted = await suite.knex.transaction(async (trx) => {
      await trx.raw('SET LOCAL session_replication_role = replica');
      return (await trx.raw('UPDATE ?? SET amount_cents = amount_cents + 1 WHERE id % ? = 0', [table, everyNth]))
        .rowCount as number;
    });
    return { h, planted };
  };
  const wrongRows = async (table: string) =>
    (
      await suite.knex.raw(
        'SELECT count(*)::int AS n FROM ?? WHERE amount IS DISTINCT FROM (amount_cents::numeric / 100)::numeric(12,2)',
        [table],
      )
    ).rows[0].n as number;

  it('verify fails naming repair; repair re-derives exactly the planted rows, verifies clean, and reads may switch', async () => {
    await createTable('orders_drift', 5000);
    const m = defineMigration(amountInput('drift', 'orders_drift'));
    const { h, planted } = await backfilledWithDrift(m, 'orders_drift', 97);
    assert.equal(planted, 51);
    assert.equal(await wrongRows('orders_drift'), 51);

    await assert.rejects(h.verify(), (e: { code?: string; hint?: string }) => {
      assert.equal(e.code, 'PF_VERIFY_FAILED');
      assert.match(e.hint ?? '', /phaseflag repair drift/);
      assert.match(e.hint ?? '', /repair\(\)/);
      return true;
    });
    // The transition's own refusal names repair too.
    await assert.rejects(h.readNew(), (e: { code?: string }) => e.code === 'PF_GUARD_REFUSED');
    const facts = (await h.inspect()).facts;
    assert.equal(facts.phase, 'backfilled');

    spans.reset();
    const result = await h.repair({ batch: { size: 600 } });
    assert.equal(result.rowsRepaired, 51, 'exactly the rows that differ are rewritten');
    assert.equal(result.rowsScanned, 5000);
    assert.equal(result.verify?.clean, true);
    assert.equal(await wrongRows('orders_drift'), 0);
    const row = (await internalsOf(pf).store.get('drift'))!;
    assert.equal(row.phase, 'verified');
    assert.equal(row.verify_result?.clean, true);

    const repairSpan = spans.byName(SPAN.repair);
    assert.equal(repairSpan.length, 1);
    assert.equal(repairSpan[0]!.attributes[ATTR.rowsRepaired], 51);
    assert.ok(spans.byName(SPAN.backfillBatch).length >= 9, 'the repair runs in traced batches');
    const events = await internalsOf(pf).store.events('drift', 50);
    const actions = events.filter((e) => e.kind === 'transition').map((e) => e.action);
    assert.ok(actions.includes('repair'), 'backfilled → backfilling is recorded as action repair');
    assert.ok(events.some((e) => e.kind === 'repair' && (e.detail as { rowsRepaired?: number })?.rowsRepaired === 51));

    const d = await h.readNew();
    assert.equal(d.to, 'read-new');
  });

  it('is refused where there is nothing to repair (clean verify) or nothing to repair yet (before the backfill completes)', async () => {
    await createTable('orders_clean', 300);
    const m = defineMigration(amountInput('clean', 'orders_clean'));
    const h = pf.migration(m);
    await h.expand();
    await h.startDualWrite();
    await assert.rejects(h.repair(), (e: { code?: string }) => e.code === 'PF_GUARD_REFUSED');
    await h.backfill();
    await h.verify();
    await assert.rejects(
      h.repair(),
      (e: { code?: string; message?: string }) => e.code === 'PF_GUARD_REFUSED' && /backfilled/.test(e.message ?? ''),
    );
    assert.equal((await internalsOf(pf).store.get('clean'))!.phase, 'verified');
  });

  it('walks rows inserted since the first backfill too (fresh ranges bounded at the repair); a repair cut short or paused resumes', async () => {
    await createTable('orders_late', 2000);
    const m = defineMigration(amountInput('late', 'orders_late'));
    const { h } = await backfilledWithDrift(m, 'orders_late', 50);
    // Rows inserted after the backfill's upper key, also behind the trigger's back.
    await suite.knex.transaction(async (trx) => {
      await trx.raw('SET LOCAL session_replication_role = replica');
      await trx.raw('INSERT INTO orders_late (amount_cents, amount) SELECT g, 0 FROM generate_series(1, 30) AS g');
    });
    assert.equal(await wrongRows('orders_late'), 40 + 30);
    await assert.rejects(h.verify(), (e: { code?: string }) => e.code === 'PF_VERIFY_FAILED');

    const cutShort = () => {
      const stop = new AbortController();
      return { signal: stop.signal, onProgress: () => stop.abort(), batch: { size: 500 } };
    };
    const first = await h.repair(cutShort());
    assert.equal(first.verify, null, 'cut short: no verify');
    assert.equal((await internalsOf(pf).store.get('late'))!.phase, 'backfilling');
    const second = await h.repair(cutShort());
    assert.equal(second.verify, null);
    assert.ok(second.rowsScanned > 0 && second.rowsScanned <= 500, 'resumed where the first stopped');
    await h.pause();
    const third = await h.repair({ batch: { size: 500 } });
    assert.equal(first.rowsRepaired + second.rowsRepaired + third.rowsRepaired, 70);
    assert.equal(first.rowsScanned + second.rowsScanned + third.rowsScanned, 2030, 'no row walked twice');
    assert.equal(third.verify?.clean, true);
    assert.equal(await wrongRows('orders_late'), 0);
    assert.equal((await internalsOf(pf).store.get('late'))!.phase, 'verified');
  });
});
