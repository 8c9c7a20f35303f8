import assert from 'node:assert/strict';
import { defineMigration, StaticFlagSource } from '@phaseflag/core';
import { amountInput, createAmountTable, startLoad, waitFor, wrongAmountRows } from '@phaseflag/testkit';
import type { KnexRouter } from '../src/index.js';
import { internalsOf } from '../src/internal.js';
import { trafficOps } from './fixtures/controller-suite.js';
import { usePoolerSuite } from './fixtures/pooler-suite.js';

describe('controllers on direct connections, services behind PgBouncer', function () {
  this.timeout(180_000);
  const t = usePoolerSuite('pooler controller');

  it('the other controller takes over when the leader stops mid-backfill and finishes; the services follow by polling', async () => {
    const table = 'orders_takeover';
    const qualified = `${t.suite.schema}.${table}`;
    const rows = 20_000;
    await createAmountTable(t.suite.knex, table, rows);
    const m = defineMigration(
      amountInput('takeover', table, {
        table: { schema: t.suite.schema, name: table },
        batch: { size: 500, targetBatchMs: 0, pauseMs: 20 },
      }),
    );
    const flags = new StaticFlagSource({
      'takeover.dual-write': true,
      'takeover.backfill': true,
      'takeover.read-new': true,
      'takeover.contract': false,
    });
    const routers: KnexRouter[] = [];
    for (const n of [1, 2]) {
      const { pf } = t.engine({ knex: t.pooled() });
      routers.push(await pf.migration(m).router(flags, { heartbeatMs: 100, instanceId: `svc-${n}` }));
    }
    const service = t.pooled(3);
    const load = startLoad({ knex: service, concurrency: 2, ops: trafficOps(routers[0]!, qualified, rows) });
    t.cleanups.push(() => load.stop());

    const controllers = ['a', 'b'].map((name) => {
      const { pf } = t.engine({ knex: t.pooled(2), directUrl: t.suite.databaseUrl });
      const c = pf.controller(m, { flags, intervalMs: 200, instanceId: `ctl-${name}` });
      t.cleanups.push(() => c.stop());
      return { pf, c };
    });
    for (const { c } of controllers) await c.start();
    const store = internalsOf(controllers[0]!.pf).store;
    const leading = controllers.filter(({ c }) => c.isLeader('takeover'));
    assert.equal(leading.length, 1, 'exactly one controller leads');
    const leader = leading[0]!.c;
    const other = controllers.find(({ c }) => c !== leader)!.c;

    const done = async () =>
      Number(
        (
          await t.suite.knex.raw(
            'SELECT coalesce(sum(rows_done), 0)::int AS n FROM ??.backfill_ranges WHERE migration_id = ?',
            [t.suite.stateSchema, 'takeover'],
          )
        ).rows[0].n,
      );
    await waitFor(async () => (await done()) >= 2000, { timeoutMs: 30_000, description: 'some batches' });
    assert.ok((await done()) < rows, 'the backfill is still running when the leader stops');
    await leader.stop();

    await waitFor(async () => (await store.get('takeover'))?.phase === 'read-new', {
      timeoutMs: 60_000,
      description: 'the other controller to finish up to read-new',
    });
    assert.equal(other.isLeader('takeover'), true);
    await waitFor(() => routers.every((r) => r.core.currentPhase === 'read-new'), {
      timeoutMs: 5000,
      description: 'both services to apply read-new',
    });
    const report = await load.stop();
    assert.equal(report.errors, 0, JSON.stringify(report.errorSamples.slice(0, 3)));
    assert.equal(await wrongAmountRows(t.suite.knex, qualified), 0, 'every row backfilled right');
    const transitions = (await store.events('takeover', 200)).filter((e) => e.kind === 'transition');
    assert.deepEqual(
      transitions.map((e) => e.to_phase),
      ['expanded', 'dual-write', 'backfilling', 'backfilled', 'verified', 'read-new'],
    );
  });
});
