import assert from 'node:assert/strict';
import { StaticFlagSource, defineMigration } from '@phaseflag/core';
import { amountInput, createAmountTable, holdsFor, waitFor } from '@phaseflag/testkit';
import type { Knex } from 'knex';
import { Phaseflag } from '../src/index.js';
import { useControllerSuite } from './fixtures/controller-suite.js';

/** Queries the engine's own pool runs now (its connections are the only ones with this application_name). */
async function busy(knex: Knex, app: string): Promise<string[]> {
  const rows = (
    await knex.raw(
      "SELECT state, query FROM pg_stat_activity WHERE application_name = ? AND state NOT IN ('idle') AND pid <> pg_backend_pid()",
      [app],
    )
  ).rows as { state: string; query: string }[];
  return rows.map((r) => `${r.state}: ${r.query.slice(0, 80)}`);
}

describe('controller stop() waits for its backfill runners', function () {
  this.timeout(120_000);
  const t = useControllerSuite('controller_stop');

  for (const when of ['while a pass is starting the backfill', 'while the backfill runs'] as const) {
    it(`stop() ${when}: no query of the controller runs afterwards and close() returns`, async () => {
      const { suite } = t;
      const n = when.startsWith('while a pass') ? 1 : 2;
      const table = `orders_stop${n}`;
      const app = `pf-stop-${n}-${suite.schema}`.slice(0, 60);
      await createAmountTable(suite.knex, table, 20_000);
      await suite.knex.raw(
        `CREATE OR REPLACE FUNCTION pf_slow_stop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.05); RETURN NULL; END $$`,
      );
      await suite.knex.raw(
        `CREATE TRIGGER pf_slow_stop AFTER UPDATE ON ?? FOR EACH STATEMENT EXECUTE FUNCTION pf_slow_stop()`,
        [table],
      );
      const knex = suite.newKnex({ pool: { min: 0, max: 6 }, applicationName: app });
      const engine = new Phaseflag({ knex, stateSchema: suite.stateSchema, pollIntervalMs: 100, graceMs: 0 });
      const m = defineMigration(amountInput(`stop${n}`, table, { batch: { size: 200, targetBatchMs: 0 } }));
      const flags = new StaticFlagSource({
        [`stop${n}.dual-write`]: true,
        [`stop${n}.backfill`]: false,
        [`stop${n}.read-new`]: false,
        [`stop${n}.contract`]: false,
      });
      const c = t.controller(m, flags, {}, engine);
      await c.start();
      await t.waitPhase(m.id, 'dual-write');
      let stopping: Promise<void>;
      if (n === 1) {
        // Hold the migration row: the pass that starts the backfill waits in its transition while stop() begins.
        const trx = await suite.knex.transaction();
        await trx.raw('SELECT 1 FROM ??.migrations WHERE id = ? FOR UPDATE', [suite.stateSchema, m.id]);
        flags.set(`stop${n}.backfill`, true);
        await waitFor(async () => (await busy(suite.knex, app)).some((q) => q.includes('migrations')), {
          timeoutMs: 10_000,
          description: 'the pass to wait on the migration row',
        });
        stopping = c.stop();
        await new Promise((resolve) => setTimeout(resolve, 200));
        await trx.rollback();
      } else {
        flags.set(`stop${n}.backfill`, true);
        await waitFor(async () => (await busy(suite.knex, app)).some((q) => q.includes(table)), {
          timeoutMs: 10_000,
          description: 'a backfill batch to run',
        });
        stopping = c.stop();
      }
      await stopping;
      await holdsFor(async () => (await busy(suite.knex, app)).length === 0, 1000, {
        description: 'no query of the controller after stop()',
      });
      assert.deepEqual(await busy(suite.knex, app), []);
      const closed = Promise.all([engine.close(), knex.destroy()]).then(() => true);
      const timedOut = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 10_000).unref());
      assert.equal(await Promise.race([closed, timedOut]), true, 'close() returns');
    });
  }
});
