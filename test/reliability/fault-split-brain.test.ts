import assert from 'node:assert/strict';
import { ERROR_CLASS_BY_CODE, StaticFlagSource, defineMigration, type Logger } from '@phaseflag/core';
import { Phaseflag, type MigrationHandle } from '@phaseflag/postgres';
import { amountInput, createAmountTable, createSuiteSchema, waitFor, type Suite } from '@phaseflag/testkit';
import type { Knex } from 'knex';
import { recordFinding, scaled } from './record.js';
import { FaultWriter } from './support/fault-writer.js';
import { ConcurrencyProbe } from './support/fault-probe.js';
import { assertCoherent, between, sleep, storeFacts, transitionCounts, wrongRows } from './support/fault-checks.js';

const SECTION = 'Split brain: backends terminated under the leader and the runner';
const ROWS = scaled(20_000, 150_000);
const TERMINATIONS = scaled(4, 20);
const quiet: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

/** Ends every backend of these application names; how many there were. */
async function terminate(knex: Knex, names: string[]): Promise<number> {
  const r = await knex.raw(
    `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
      WHERE application_name = ANY(?::text[]) AND pid <> pg_backend_pid()`,
    [names],
  );
  return (r.rows[0] as { n: number }).n;
}

describe('reliability: split brain (pg_terminate_backend of the leader and of the runner)', function () {
  let suite: Suite;
  const pfs: Phaseflag[] = [];
  let writer: FaultWriter | undefined;
  let probe: ConcurrencyProbe | undefined;

  before(async () => {
    suite = await createSuiteSchema('rel_split');
  });
  afterEach(async () => {
    await probe?.stop();
    await writer?.stop();
    await Promise.all(pfs.splice(0).map((pf) => pf.close().catch(() => undefined)));
  });
  after(async () => {
    await suite?.cleanup();
  });

  /** A Phaseflag on a pool of its own, named so that its backends can be told apart and terminated. */
  async function instance(name: string): Promise<Phaseflag> {
    const knex = suite.newKnex({ applicationName: name, pool: { min: 0, max: 6 } });
    const pf = new Phaseflag({ knex, stateSchema: suite.stateSchema, pollIntervalMs: 100, graceMs: 50, logger: quiet });
    await pf.install();
    pfs.push(pf);
    return pf;
  }

  async function seed(table: string): Promise<void> {
    await createAmountTable(suite.knex, table, ROWS);
    writer = new FaultWriter(suite.newKnex({ pool: { min: 0, max: 4 } }), table, ROWS, 2, false);
    writer.start(2);
  }

  async function finish(table: string, id: string): Promise<{ writes: number; doubled: number }> {
    await writer!.stop();
    const report = await writer!.report();
    assert.equal(report.lost, 0, 'acknowledged writes lost');
    assert.equal(await wrongRows(suite.knex, table), 0, 'wrong rows');
    // Two runners at once shows twice: in pg_stat_activity, and in rows_backfilled overshooting; report both.
    const doubled = probe!.overlaps;
    const problems = doubled > 0 ? [`two runners wrote ${table} at the same moment (${probe!.describe()})`] : [];
    try {
      assertCoherent(await storeFacts(suite.knex, suite.stateSchema, id, table), 'verified', true);
    } catch (error) {
      problems.push((error as Error).message);
    }
    assert.deepEqual(problems, [], problems.join('; '));
    return { writes: report.writes, doubled };
  }

  it('two controllers: terminating the leader’s backends again and again never applies a transition twice', async () => {
    const table = 'orders_split_leader';
    const id = `rel-split-leader-${suite.schema.slice(-8)}`;
    await seed(table);
    const input = amountInput(id, table, { batch: { size: 500, targetBatchMs: 0, pauseMs: 10 } });
    const names = defineMigration(input).flags;
    const flags = new StaticFlagSource({
      [names.dualWrite]: true,
      [names.backfill]: true,
      [names.readNew]: false,
      [names.contract]: false,
    });
    const apps = ['split-leader-a', 'split-leader-b'];
    const controllers = await Promise.all(
      apps.map(async (app) => {
        const pf = await instance(app);
        return pf.controller(pf.migration(input), { flags, instanceId: app, intervalMs: 150, logger: quiet });
      }),
    );
    probe = new ConcurrencyProbe(suite.knex, table, apps);
    probe.start();
    for (const c of controllers) await c.start();
    const handle = pfs[0]!.migration(input);
    let terminations = 0;
    let backends = 0;
    while (terminations < TERMINATIONS) {
      await sleep(between(150, scaled(600, 1500)));
      if ((await handle.status()).phase === 'verified') break;
      // The leader as Postgres sees it: the controller session that holds an advisory lock.
      const leader = (
        await suite.knex.raw(
          `SELECT DISTINCT substr(a.application_name, 22) AS app FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = ANY(?::text[])`,
          [apps.map((app) => `phaseflag-controller ${app}`)],
        )
      ).rows[0] as { app: string } | undefined;
      if (!leader) continue;
      backends += await terminate(suite.knex, [leader.app, `phaseflag-controller ${leader.app}`]);
      terminations++;
    }
    assert.ok(terminations > 0, 'the rollout ended before any termination');
    await waitFor(async () => (await handle.status()).phase === 'verified', {
      timeoutMs: 240_000,
      intervalMs: 200,
      description: 'verified after the terminations',
    });
    for (const c of controllers) await c.stop();
    const counts = await transitionCounts(suite.knex, suite.stateSchema, id);
    for (const action of ['expand', 'dual-write', 'backfill', 'complete-backfill', 'verify'])
      assert.equal(counts[action], 1, `${action} applied ${counts[action] ?? 0} times: ${JSON.stringify(counts)}`);
    const { writes } = await finish(table, id);
    recordFinding({
      section: SECTION,
      line:
        `Two controllers on ${ROWS.toLocaleString('en')} rows; the leader's backends (${backends}) terminated ` +
        `${terminations} times during the rollout, under ${writes} acknowledged writes: each transition in the ` +
        `event log once, no two runners seen writing at once (${probe.samples} samples), rows_backfilled equal to the ` +
        `row count, 0 writes lost, 0 wrong rows.`,
      figures: { rows: ROWS, terminations, backends, writes, samples: probe.samples },
    });
  });

  it('two runners: terminating the running backfill’s lock backend never lets two runners work at once', async () => {
    const table = 'orders_split_runner';
    const id = `rel-split-runner-${suite.schema.slice(-8)}`;
    await seed(table);
    const input = amountInput(id, table, { batch: { size: 500, targetBatchMs: 0, pauseMs: 10 } });
    const apps = ['split-runner-a', 'split-runner-b'];
    const handles: MigrationHandle[] = [];
    for (const app of apps) handles.push((await instance(app)).migration(input));
    await handles[0]!.expand();
    await handles[0]!.startDualWrite();
    probe = new ConcurrencyProbe(suite.knex, table, apps);
    probe.start();
    const errors: Record<string, number> = {};
    let stop = false;
    // Each runner does what `phaseflag backfill` in a retry loop would: run, and when refused or cut off, again.
    const loop = async (h: MigrationHandle) => {
      while (!stop) {
        try {
          const run = await h.backfill();
          if (run.completed || run.phase === 'backfilled') return;
        } catch (error) {
          // The other runner finished: nothing left to run (a refusal in backfilled is the end, not a fault).
          if (['backfilled', 'verified'].includes((await h.status()).phase)) return;
          const code = String((error as { code?: string }).code ?? (error as Error).message);
          if (code !== 'PF_BACKFILL_LOCKED') errors[code] = (errors[code] ?? 0) + 1;
          await sleep(50);
        }
      }
    };
    const loops = handles.map(loop);
    let terminations = 0;
    while (terminations < TERMINATIONS) {
      await sleep(between(100, scaled(500, 1200)));
      const runner = await handles[0]!.backfillRunner();
      if (!runner) {
        if (['backfilled', 'verified'].includes((await handles[0]!.status()).phase)) break;
        continue;
      }
      await suite.knex.raw('SELECT pg_terminate_backend(?)', [runner.pid]);
      terminations++;
    }
    await Promise.race([
      Promise.all(loops),
      sleep(240_000).then(() => {
        throw new Error('the backfill did not complete within 240 s');
      }),
    ]).finally(() => (stop = true));
    await handles[0]!.verify();
    // Both faults are reported together: a cut-off runner that fails untyped, and one that keeps going.
    const problems: string[] = [];
    const untyped = Object.keys(errors).filter((code) => !(code in ERROR_CLASS_BY_CODE));
    if (untyped.length > 0) problems.push(`a runner cut off failed untyped: ${JSON.stringify(errors)}`);
    let writes = 0;
    try {
      ({ writes } = await finish(table, id));
    } catch (error) {
      problems.push((error as Error).message);
    }
    assert.deepEqual(problems, [], problems.join('; '));
    recordFinding({
      section: SECTION,
      line:
        `Two backfill runners on ${ROWS.toLocaleString('en')} rows; the lock-holding runner's backend terminated ` +
        `${terminations} times, under ${writes} acknowledged writes: the cut-off runner stopped with a typed error ` +
        `(${Object.entries(errors)
          .map(([k, n]) => `${n}× ${k}`)
          .join(
            ', ',
          )}), no two runners seen writing at once (${probe.samples} samples), rows_backfilled equal to the ` +
        `row count, 0 writes lost, 0 wrong rows.`,
      figures: { rows: ROWS, terminations, writes, samples: probe.samples, ...errors },
    });
  });
});
