import assert from 'node:assert/strict';
import { ERROR_CLASS_BY_CODE, type Logger } from '@phaseflag/core';
import { Phaseflag } from '@phaseflag/postgres';
import { amountInput, createAmountTable, createSuiteSchema, type Suite } from '@phaseflag/testkit';
import type { Knex } from 'knex';
import { recordFinding, scaled } from './record.js';
import { KillChild } from './support/kill-process.js';
import { FaultWriter } from './support/fault-writer.js';
import { assertCoherent, assertNoOrphanLocks, between, sleep, storeFacts, wrongRows } from './support/fault-checks.js';

const SECTION = 'SIGKILL of the backfill and the controller';
const ROWS = scaled(15_000, 150_000);
const KILLS = scaled(8, 52);
const KILLS_PER_CYCLE = scaled(4, 6);
/** How long after its first batch a kill "inside the backfill" may land (well within the backfill's length). */
const BACKFILL_WINDOW_MS = scaled(300, 2_000);

type Target = 'ddl' | 'batch' | 'checkpoint' | 'verify';
const quiet: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

/** Each cycle's strikes, in order: one at each moment of the run, more inside the backfill in the long form. */
const PLAN: Target[] =
  KILLS_PER_CYCLE > 4
    ? ['ddl', 'batch', 'checkpoint', 'batch', 'checkpoint', 'verify']
    : ['ddl', 'batch', 'checkpoint', 'verify'];
const RANK: Record<string, number> = { pending: 0, 'rolled-back': 0, backfilled: 2, verified: 3 };
const TARGET_RANK: Record<Target, number> = { ddl: 0, batch: 1, checkpoint: 1, verify: 2 };

/** The next strike of the plan that is not behind the migration already (`from`: the plan's position). */
function nextTarget(phase: string, from: number): { target: Target; at: number } | null {
  const rank = RANK[phase] ?? 1;
  for (let at = from; at < PLAN.length; at++) if (TARGET_RANK[PLAN[at]!] >= rank) return { target: PLAN[at]!, at };
  return null;
}

/**
 * A transaction that reads the table and stays open: ADD COLUMN holds back from its ACCESS EXCLUSIVE without
 * queueing once the transaction is older than ddl.longTransactionMs (before that it queues, times out, retries).
 */
async function holdBlocker(knex: Knex, table: string): Promise<() => Promise<void>> {
  const trx = await knex.transaction();
  await trx.raw('SELECT 1 FROM ?? LIMIT 1', [table]);
  return async () => {
    await trx.rollback().catch(() => undefined);
  };
}

describe('reliability: SIGKILL of the backfill and the controller', function () {
  let suite: Suite;
  let pf: Phaseflag;
  let writer: FaultWriter | undefined;
  let child: KillChild | undefined;

  before(async () => {
    suite = await createSuiteSchema('rel_kill');
    pf = new Phaseflag({
      knex: suite.knex,
      stateSchema: suite.stateSchema,
      pollIntervalMs: 100,
      graceMs: 50,
      logger: quiet,
    });
    await pf.install();
  });
  after(async () => {
    await child?.kill();
    await writer?.stop();
    await pf?.close();
    await suite?.cleanup();
  });

  it(`survives ${KILLS} SIGKILLs of a backfill or controller process at random moments, under writes`, async () => {
    const table = 'orders_kill';
    const id = `rel-kill-${suite.schema.slice(-8)}`;
    const prefix = `rk${suite.schema.slice(-8)}`;
    await createAmountTable(suite.knex, table, ROWS);
    const input = amountInput(id, table, {
      batch: { size: 500, targetBatchMs: 0, pauseMs: 5 },
      ddl: { lockTimeoutMs: 200, retryBaseMs: 20, retryMaxMs: 100, maxAttempts: 1000 },
    });
    const m = pf.migration(input);
    await m.register();
    writer = new FaultWriter(suite.newKnex({ pool: { min: 0, max: 4 } }), table, ROWS);
    writer.start(2);
    const blockerKnex = suite.newKnex({ pool: { min: 0, max: 2 } });

    const landedAt: Record<string, number> = {};
    const byMode = { steps: 0, controller: 0 };
    const errorCodes: Record<string, number> = {};
    let kills = 0;
    let cycles = 0;
    let spawns = 0;
    while (kills < KILLS) {
      cycles++;
      const mode = cycles % 2 === 1 ? 'steps' : 'controller';
      let planned = 0;
      let failures = 0;
      for (;;) {
        const phase = (await m.status()).phase;
        const next = kills >= KILLS ? null : nextTarget(phase, planned);
        const target = next?.target ?? null;
        if (next) planned = next.at + 1;
        const release = target === 'ddl' ? await holdBlocker(blockerKnex, table) : undefined;
        child = KillChild.start({
          connection: suite.connectionString,
          stateSchema: suite.stateSchema,
          migration: input,
          mode,
          instanceId: `${prefix}-${spawns++}`,
        });
        let landed = false;
        try {
          if (target) {
            const stage = target === 'batch' || target === 'checkpoint' ? 'backfill' : target;
            const seen = await child.next((msg) => msg.type === 'stage' && msg.stage === stage, 120_000);
            if (seen) {
              if (target === 'checkpoint') {
                const nth = between(1, 4);
                await child.next(() => child!.messages.filter((msg) => msg.type === 'progress').length >= nth, 60_000);
              } else if (target === 'ddl') await sleep(between(100, 1500));
              else if (target === 'verify') await sleep(between(0, 120));
              else {
                await child.next((msg) => msg.type === 'progress', 60_000);
                await sleep(between(0, BACKFILL_WINDOW_MS));
              }
              const last = child.messages.filter((msg) => msg.type === 'stage').at(-1);
              const lastMessage = child.messages.at(-1);
              landed = await child.kill();
              if (landed) {
                // Named by where the child was: right after a committed batch, or by its last stage.
                const where =
                  target === 'checkpoint' && lastMessage?.type === 'progress' ? 'checkpoint' : (last?.stage ?? 'start');
                landedAt[where] = (landedAt[where] ?? 0) + 1;
              }
            }
          }
        } finally {
          await release?.();
        }
        if (landed) {
          kills++;
          byMode[mode]++;
          continue;
        }
        const code = await child.finish(300_000);
        if (code === 0) break;
        // A restart right after a kill may find the dead process's session still holding the runner's lock: a
        // typed refusal, never PF_UNEXPECTED; the next restart goes on.
        const error = child.lastError();
        const errorCode = error?.code ?? `exit ${code}`;
        errorCodes[errorCode] = (errorCodes[errorCode] ?? 0) + 1;
        assert.ok(
          errorCode in ERROR_CLASS_BY_CODE,
          `untyped failure after a kill: ${errorCode} ${error?.message ?? child.stderr.join('')}`,
        );
        assert.ok(++failures < 30, `the child keeps failing: ${errorCode} ${error?.message}`);
        await sleep(200);
      }
      // The cycle's books, with the writer still going.
      assertCoherent(await storeFacts(suite.knex, suite.stateSchema, id, table), 'verified');
      assert.equal(await wrongRows(suite.knex, table), 0, `wrong rows after cycle ${cycles}`);
      await assertNoOrphanLocks(suite.knex, [`kill-child ${prefix}`, `phaseflag-controller ${prefix}`]);
      if (kills < KILLS) await m.rollback();
    }

    await writer.stop();
    const report = await writer.report();
    const wrong = await wrongRows(suite.knex, table);
    assert.equal(report.lost, 0, 'acknowledged writes lost');
    assert.equal(wrong, 0);
    assert.ok(report.writes > 0, `no write acknowledged: ${writer.errors.join('; ')}`);
    const where = Object.entries(landedAt)
      .map(
        ([k, n]) =>
          `${n} ${k === 'ddl' ? 'while DDL waited behind a long transaction' : k === 'checkpoint' ? 'right after a batch commit' : `in ${k}`}`,
      )
      .join(', ');
    const refusals = Object.entries(errorCodes)
      .map(([k, n]) => `${n}× ${k}`)
      .join(', ');
    recordFinding({
      section: SECTION,
      line:
        `${kills} SIGKILLs (${byMode.steps} of a CLI-like steps process, ${byMode.controller} of a controller) over ` +
        `${cycles} expand→verified cycles of ${ROWS.toLocaleString('en')} rows (${where}), ${spawns} processes, ` +
        `under ${report.writes} acknowledged writes (${report.inserts} inserts, ${report.updates} updates, ` +
        `${report.deletes} deletes): 0 writes lost, 0 wrong rows; state store coherent and no orphan lock after ` +
        `every cycle${refusals ? `; restarts refused with ${refusals} (typed) and went on` : ''}.`,
      figures: { kills, cycles, spawns, rows: ROWS, writes: report.writes, lost: report.lost, wrong, ...landedAt },
    });
  });
});
