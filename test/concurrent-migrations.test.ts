import assert from 'node:assert/strict';
import { defineMigration, isPhaseflagError } from '@phaseflag/core';
import type { Phaseflag } from '@phaseflag/postgres';
import { createSuiteSchema, type Suite } from '@phaseflag/testkit';
import { createOrders, engine, ordersAmount } from './support/orders.js';

const emailNormalized = defineMigration({
  id: 'orders-email',
  table: 'orders',
  oldColumn: 'email',
  newColumn: { name: 'email_normalized', type: 'text', index: true },
  backfill: 'lower(email)',
  batch: { size: 1000 },
});

describe('several migrations in flight', function () {
  this.timeout(300_000);
  let suite: Suite;
  let pf: Phaseflag;

  before(async () => {
    suite = await createSuiteSchema('concurrent', { pool: { min: 0, max: 12 } });
    await createOrders(suite.knex, 20_000);
    pf = engine(suite);
    await pf.install();
  });

  after(async () => {
    await pf?.close();
    await suite?.cleanup();
  });

  it('runs two migrations on different columns of one table side by side, each with its own state', async () => {
    const a = pf.migration(ordersAmount());
    const b = pf.migration(emailNormalized);
    await a.expand();
    await b.expand();
    await a.startDualWrite();
    await b.startDualWrite();
    const [ra, rb] = await Promise.all([a.backfill(), b.backfill({ batch: { workers: 2 } })]);
    assert.equal(ra.phase, 'backfilled');
    assert.equal(rb.phase, 'backfilled');
    // A write by plain SQL during both dual-writes fires both triggers.
    await suite.knex.raw("UPDATE orders SET amount_cents = 4242, email = 'MiXeD@Case.IO' WHERE id = 7");
    const row = (await suite.knex.raw('SELECT amount, email_normalized FROM orders WHERE id = 7')).rows[0];
    assert.equal(row.amount, '42.42');
    assert.equal(row.email_normalized, 'mixed@case.io');
    await a.verify();
    await b.verify();
    await b.readNew();
    assert.equal((await a.status()).phase, 'verified');
    assert.equal((await b.status()).phase, 'read-new');
    const wrong = await suite.knex.raw(
      'SELECT count(*)::int AS n FROM orders WHERE email_normalized IS DISTINCT FROM lower(email)',
    );
    assert.equal(wrong.rows[0].n, 0);
  });

  it('refuses a second in-flight migration on the same column with PF_MIGRATION_CONFLICT, executing no DDL', async () => {
    const clash = pf.migration(
      defineMigration({
        id: 'orders-amount-bigint',
        table: 'orders',
        oldColumn: 'amount_cents',
        newColumn: { name: 'amount_cents_big', type: 'bigint' },
        backfill: 'amount_cents::bigint',
      }),
    );
    await assert.rejects(clash.expand(), (e: unknown) => isPhaseflagError(e, 'PF_MIGRATION_CONFLICT'));
    const col = await suite.knex.raw(
      "SELECT count(*)::int AS n FROM information_schema.columns WHERE table_schema = ? AND table_name = 'orders' AND column_name = 'amount_cents_big'",
      [suite.schema],
    );
    assert.equal(col.rows[0].n, 0);
    const refused = (await clash.status()).events.filter((e) => e.kind === 'refused');
    assert.equal(refused.length, 1, 'the refusal is recorded');
  });

  it('refuses to run two steps of one migration at once', async () => {
    const m = pf.migration(emailNormalized);
    const results = await Promise.allSettled([m.readOld(), m.readOld()]);
    const codes = results.map((r) => (r.status === 'rejected' ? (r.reason as { code?: string }).code : 'ok'));
    assert.ok(codes.includes('ok'));
    assert.ok(
      codes.some((c) => c === 'PF_MIGRATION_CONFLICT' || c === 'PF_GUARD_REFUSED'),
      codes.join(','),
    );
  });
});
