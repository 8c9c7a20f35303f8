import assert from 'node:assert/strict';
import { ERROR_CLASS_BY_CODE, StaticFlagSource, defineMigration, type Logger } from '@phaseflag/core';
import { Phaseflag, type MigrationHandle } from '@phaseflag/postgres';
import {
  amountInput,
  createAmountTable,
  privateServerUnavailable,
  startPrivateServer,
  waitFor,
  type PrivateServer,
} from '@phaseflag/testkit';
import knexFactory, { type Knex } from 'knex';
import { recordFinding, scaled } from './record.js';
import { FaultWriter } from './support/fault-writer.js';
import { assertCoherent, between, sleep, storeFacts, wrongRows } from './support/fault-checks.js';

const SECTION = 'Postgres restarted mid-backfill and mid-controller';
const ROWS = scaled(30_000, 200_000);
const RESTARTS = scaled(1, 3);
const STATE = 'pf_state_restart';
const quiet: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

/** The error's phaseflag code, or what it is when it has none. */
const codeOf = (error: unknown): string => {
  const code = (error as { code?: unknown })?.code;
  return typeof code === 'string' && code in ERROR_CLASS_BY_CODE ? code : `untyped (${(error as Error)?.message})`;
};

describe('reliability: Postgres restarted (pg_ctl restart) mid-backfill and mid-controller', function () {
  let server: PrivateServer | undefined;
  let knex: Knex;
  let writerKnex: Knex;
  let writer: FaultWriter | undefined;
  const pfs: Phaseflag[] = [];

  before(async function () {
    const why = privateServerUnavailable();
    if (why) {
      console.log(`      (skipped: ${why})`);
      this.skip();
    }
    server = await startPrivateServer();
    knex = knexFactory({ client: 'pg', connection: server.url, pool: { min: 0, max: 8 } });
    writerKnex = knexFactory({ client: 'pg', connection: server.url, pool: { min: 0, max: 4 } });
  });
  afterEach(async () => {
    await writer?.stop();
    await Promise.all(pfs.splice(0).map((pf) => pf.close().catch(() => undefined)));
  });
  after(async () => {
    await knex?.destroy();
    await writerKnex?.destroy();
    await server?.stop();
  });

  async function setUp(kind: string, mode: string): Promise<{ pf: Phaseflag; m: MigrationHandle; table: string }> {
    const table = `orders_restart_${kind}_${mode}`;
    await createAmountTable(knex, table, ROWS);
    const pf = new Phaseflag({ knex, stateSchema: STATE, pollIntervalMs: 100, graceMs: 50, logger: quiet });
    pfs.push(pf);
    await pf.install();
    const input = amountInput(`rel-restart-${kind}-${mode}`, table, {
      batch: { size: 500, targetBatchMs: 0, pauseMs: 5 },
    });
    writer = new FaultWriter(writerKnex, table, ROWS);
    writer.start(2);
    return { pf, m: pf.migration(input), table };
  }

  /** Writes lost, wrong rows and the store's books once verified; the writes' figures. */
  async function check(m: MigrationHandle, table: string) {
    await writer!.stop();
    const report = await writer!.report(knex);
    assert.equal(report.lost, 0, 'acknowledged writes lost');
    assert.equal(await wrongRows(knex, table), 0, 'wrong rows');
    assertCoherent(await storeFacts(knex, STATE, m.id, table), 'verified');
    return report;
  }

  for (const mode of ['fast', 'immediate'] as const) {
    it(`pg_ctl restart -m ${mode} mid-backfill: the run resumes or fails typed, a rerun completes with 0 wrong rows`, async () => {
      const { m, table } = await setUp('bf', mode);
      await m.expand();
      await m.startDualWrite();
      // One backfill, restarted under it RESTARTS times a few batches apart: it reconnects and resumes by itself
      // (reconnectMs), or fails typed and is started again, as an operator would.
      const outcomes: string[] = [];
      let batches = 0;
      let settled = false;
      const start = () => {
        settled = false;
        return m
          .backfill({ onProgress: () => batches++ })
          .then(
            (r) => (r.completed ? 'completed' : `stopped in ${r.phase}`),
            (error: unknown) => codeOf(error),
          )
          .finally(() => (settled = true));
      };
      let run = start();
      let restarts = 0;
      while (restarts < RESTARTS) {
        const target = batches + between(2, 8);
        await waitFor(() => batches >= target || settled, { timeoutMs: 120_000, description: `${target} batches` });
        if (settled) {
          outcomes.push(await run);
          if ((await m.status()).phase !== 'backfilling') break;
          run = start();
          continue;
        }
        await server!.restart(mode);
        restarts++;
      }
      outcomes.push(await run);
      assert.equal(
        restarts,
        RESTARTS,
        `the backfill ended after ${restarts} of ${RESTARTS} restarts: more rows needed`,
      );
      // A rerun, as an operator's `phaseflag backfill` after the outage: typed refusals while it settles, then done.
      const rerunErrors: string[] = [];
      const done = async () => (await m.status().catch(() => null))?.phase === 'backfilled';
      for (let attempt = 0; !(await done()); attempt++) {
        try {
          const r = await m.backfill();
          if (r.completed || r.phase === 'backfilled') break;
        } catch (error) {
          rerunErrors.push(codeOf(error));
          assert.ok(attempt < 20, `the rerun keeps failing: ${rerunErrors.join(', ')}`);
          await sleep(300);
        }
      }
      await m.verify();
      const report = await check(m, table);
      const untyped = [...outcomes, ...rerunErrors].filter((o) => o.startsWith('untyped'));
      assert.deepEqual(untyped, [], `a restart surfaced untyped: ${outcomes.join('; ')}`);
      recordFinding({
        section: SECTION,
        line:
          `Backfill of ${ROWS.toLocaleString('en')} rows, \`pg_ctl restart -m ${mode}\` ${RESTARTS}× mid-batch under ` +
          `${report.writes} acknowledged writes (${report.failed} cut off by the restart, not acknowledged): the run ` +
          `ended ${outcomes.join(', ')}${rerunErrors.length > 0 ? ` (the rerun first met ${rerunErrors.join(', ')})` : ''}; ` +
          `completed, 0 writes lost, 0 wrong rows, store coherent.`,
        figures: { rows: ROWS, restarts: RESTARTS, writes: report.writes, failedWrites: report.failed },
      });
    });

    it(`pg_ctl restart -m ${mode} mid-controller: the controller carries on to verified with 0 wrong rows`, async () => {
      const { pf, m, table } = await setUp('ctl', mode);
      const names = defineMigration(amountInput(m.id, table)).flags;
      const flags = new StaticFlagSource({
        [names.dualWrite]: true,
        [names.backfill]: true,
        [names.readNew]: false,
        [names.contract]: false,
      });
      let batches = 0;
      const errors = new Set<string>();
      const controller = pf.controller(m, {
        flags,
        instanceId: `restart-${mode}`,
        intervalMs: 200,
        logger: quiet,
        backfill: { onProgress: () => batches++ },
      });
      await controller.start();
      for (let i = 0; i < RESTARTS; i++) {
        const strikeAt = batches + between(2, 8);
        await waitFor(() => batches >= strikeAt, { timeoutMs: 120_000, description: `batch ${strikeAt}` });
        await server!.restart(mode);
      }
      const started = Date.now();
      await waitFor(
        async () => {
          const e = controller.status()[0]?.lastError;
          if (e) errors.add(e);
          return (await m.status().catch(() => null))?.phase === 'verified';
        },
        { timeoutMs: 180_000, intervalMs: 200, description: 'verified after the restarts' },
      );
      const recoveredMs = Date.now() - started;
      await controller.stop();
      const report = await check(m, table);
      recordFinding({
        section: SECTION,
        line:
          `Controller backfilling ${ROWS.toLocaleString('en')} rows, \`pg_ctl restart -m ${mode}\` ${RESTARTS}× ` +
          `mid-batch under ${report.writes} acknowledged writes: it carried on to verified (${(recoveredMs / 1000).toFixed(1)} s ` +
          `after the last restart${errors.size > 0 ? `; errors it reported meanwhile: ${errors.size}` : ''}); ` +
          `0 writes lost, 0 wrong rows, store coherent.`,
        figures: { rows: ROWS, restarts: RESTARTS, writes: report.writes, recoveredMs },
      });
    });
  }
});
