import assert from 'node:assert/strict';
import { StaticFlagSource } from '@phaseflag/core';
import { Phaseflag } from '@phaseflag/postgres';
import { createSuiteSchema, waitFor, type Suite } from '@phaseflag/testkit';
import { EXIT } from '../src/exit-codes.js';
import { createOrders, ordersConfig, phaseOf, workdir, wrongRows, type Workdir } from './support.js';

/** A migration walked by hand, one command at a time, and what `status` shows of the services that run it. */
describe('phaseflag CLI: a migration by hand, and status', function () {
  this.timeout(120_000);
  let suite: Suite;
  let w: Workdir;

  before(async () => {
    suite = await createSuiteSchema('cli walk');
    w = workdir(suite);
    w.writeConfig(ordersConfig(suite.schema));
  });
  after(async () => {
    w?.remove();
    await suite?.cleanup();
  });

  it('walks a migration by hand: refusals exit 3, backfill and verify report as JSON, a dirty verify exits 4', async () => {
    await createOrders(suite, 1000);
    const refused = await w.run(['dual-write', 'orders-amount', '--json']);
    assert.equal(refused.code, EXIT.refused);
    assert.equal(refused.json().error.code, 'PF_GUARD_REFUSED');
    assert.match(refused.stderr, /^PF_GUARD_REFUSED: .*"dual-write" applies from expanded, not from pending/);

    assert.equal((await w.run(['expand', 'orders-amount'])).code, EXIT.ok);
    const dw = await w.run(['dual-write', 'orders-amount', '--json']);
    assert.deepEqual(dw.json(), {
      migrationId: 'orders-amount',
      action: 'dual-write',
      from: 'expanded',
      to: 'dual-write',
      phase: 'dual-write',
    });

    const status = (await w.run(['status', 'orders-amount', '--json'])).json().migrations[0];
    assert.equal(status.phase, 'dual-write');
    assert.deepEqual(
      status.guards.map((g: { action: string; allowed: boolean }) => [g.action, g.allowed]),
      [
        ['stop-dual-write', true],
        ['backfill', true],
        ['rollback', true],
      ],
    );
    assert.equal(status.flagSource, 'none');

    const bf = await w.run(['backfill', 'orders-amount', '--json']);
    assert.equal(bf.code, EXIT.ok, bf.stderr);
    const result = bf.json();
    assert.equal(result.completed, true);
    assert.equal(result.phase, 'backfilled');
    assert.equal(result.rowsDone, 1000);
    assert.equal(result.batches, 10);
    assert.equal(await wrongRows(suite), 0);

    const contract = await w.run(['contract', 'orders-amount']);
    assert.equal(contract.code, EXIT.refused);

    // Behind the sync trigger's back (it would keep both columns in step): what a verify exists to catch.
    await suite.knex.transaction(async (trx) => {
      await trx.raw('SET LOCAL session_replication_role = replica');
      await trx.raw('UPDATE orders SET amount = 0 WHERE id IN (7, 9)');
    });
    const dirty = await w.run(['verify', 'orders-amount', '--json']);
    assert.equal(dirty.code, EXIT.verifyFailed, dirty.stderr);
    const d = dirty.json();
    assert.equal(d.clean, false);
    assert.equal(d.mismatches, 2);
    assert.deepEqual(d.sampleKeys, [[7], [9]]);
    assert.equal(d.error.code, 'PF_VERIFY_FAILED');
    assert.match(dirty.stderr, /^PF_VERIFY_FAILED: /);

    assert.match(dirty.stderr, /phaseflag repair orders-amount/, 'the way out is named');
    assert.equal(d.next, 'phaseflag repair orders-amount');

    const stillDone = await w.run(['backfill', 'orders-amount']);
    assert.equal(stillDone.code, EXIT.ok);
    assert.match(
      stillDone.stderr + stillDone.stdout,
      /2 row\(s\) that differ: `phaseflag repair orders-amount`/,
      'backfill points at repair',
    );

    // The way out: repair re-derives exactly the rows that differ, then verifies.
    const repaired = await w.run(['repair', 'orders-amount', '--json']);
    assert.equal(repaired.code, EXIT.ok, repaired.stderr);
    const rep = repaired.json();
    assert.equal(rep.rowsRepaired, 2);
    assert.equal(rep.clean, true);
    assert.equal(rep.phase, 'verified');
    assert.equal(await wrongRows(suite), 0);
    const nothing = await w.run(['repair', 'orders-amount']);
    assert.equal(nothing.code, EXIT.refused, 'nothing to repair once verified');

    // The emergency lever: read-old holds reads on the old column, status shows it, read-new releases it.
    {
      const rn = await w.run(['read-new', 'orders-amount']);
      assert.equal(rn.code, EXIT.ok, rn.stderr);
    }
    const lever = await w.run(['read-old', 'orders-amount', '--json']);
    assert.deepEqual(lever.json(), {
      migrationId: 'orders-amount',
      action: 'read-old',
      from: 'read-new',
      to: 'verified',
      phase: 'verified',
    });
    const held = (await w.run(['status', 'orders-amount', '--json'])).json().migrations[0];
    assert.ok(
      typeof held.readsHeld?.since === 'string' && !Number.isNaN(Date.parse(held.readsHeld.since)),
      JSON.stringify(held.readsHeld),
    );
    assert.match((await w.run(['status', 'orders-amount'])).stdout, /reads held[\s\S]*phaseflag read-new/);
    assert.equal((await w.run(['read-new', 'orders-amount'])).code, EXIT.ok);
    assert.equal((await w.run(['status', 'orders-amount', '--json'])).json().migrations[0].readsHeld, null);

    const rb = await w.run(['rollback', 'orders-amount']);
    assert.equal(rb.code, EXIT.ok, rb.stderr);
    assert.equal(await phaseOf(suite, 'orders-amount'), 'rolled-back');
  });

  it('status lists each service instance that reports, the phase it applies and the columns it reads and writes', async () => {
    await createOrders(suite, 10);
    await w.run(['status', 'orders-amount']); // registers the migration, as a service's start-up does
    const phase = await phaseOf(suite, 'orders-amount');
    // A service instance embedding phaseflag: its router heartbeats into the state store.
    const pf = new Phaseflag({ knex: suite.knex, stateSchema: suite.stateSchema });
    const handle = pf.migration({
      id: 'orders-amount',
      table: `${suite.schema}.orders`,
      oldColumn: 'amount_cents',
      newColumn: { name: 'amount', type: 'numeric(12,2)' },
      backfill: 'amount_cents::numeric / 100',
      reverse: '(amount * 100)::integer',
      batch: { size: 100, targetBatchMs: 0, pauseMs: 0 },
    });
    try {
      await handle.router(new StaticFlagSource({}), { instanceId: 'orders-7f9c', heartbeatMs: 200 });
      await waitFor(
        async () => (await w.run(['status', 'orders-amount', '--json'])).json().migrations[0].instances.length > 0,
        { timeoutMs: 20_000, description: 'the instance reported' },
      );
      const [inst] = (await w.run(['status', 'orders-amount', '--json'])).json().migrations[0].instances;
      assert.equal(inst.instanceId, 'orders-7f9c');
      assert.equal(inst.phase, phase);
      assert.equal(inst.live, true);
      assert.deepEqual(
        [inst.readsOld, inst.readsNew, inst.writesOld],
        [true, false, true],
        'before read-new: reads and writes the old column',
      );
      assert.equal(inst.pid, process.pid);
      const human = await w.run(['status', 'orders-amount']);
      assert.match(human.stdout, new RegExp(`orders-7f9c\\s+│ ${phase}\\s+│ yes\\s+│ old\\s+│ old\\s+│ \\d+s ago`));
    } finally {
      await pf.close();
    }
  });
});
