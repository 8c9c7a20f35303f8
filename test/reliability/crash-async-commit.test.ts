import assert from 'node:assert/strict';
import { ERROR_CLASS_BY_CODE, type Logger } from '@phaseflag/core';
import { Phaseflag, type BackfillProgress } from '@phaseflag/postgres';
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
import { assertCoherent, between, storeFacts, wrongRows } from './support/fault-checks.js';

const SECTION = 'A crash right after backfill batches commit (synchronous_commit off)';
const ROWS = scaled(20_000, 100_000);
const CRASHES = scaled(2, 5);
const BATCH = 500;
const STATE = 'pf_state_async_commit';
const quiet: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

const codeOf = (error: unknown): string => {
  const code = (error as { code?: unknown })?.code;
  return typeof code === 'string' && code in ERROR_CLASS_BY_CODE ? code : `untyped (${(error as Error)?.message})`;
};

/** What the runner saw committed: the range's checkpoint (last key) and rows, after its last batch. */
interface Seen {
  checkpoint: number;
  rowsDone: number;
  batches: number;
}

const seenOf = (p: BackfillProgress): Seen | null => {
  const r = p.ranges[0];
  return r?.checkpoint ? { checkpoint: Number(r.checkpoint[0]), rowsDone: r.rowsDone, batches: r.batches } : null;
};

/**
 * Backfill batches commit with synchronous_commit = off: COMMIT returns before the batch's WAL is written, and the
 * WAL writer writes it within about 3 × wal_writer_delay. A server crash in that window loses the batch, but a
 * batch's rows and the checkpoint that counts them are one transaction: the crash takes both, never one, and the
 * next run redoes the batch. The private server runs with wal_writer_delay = 10 s (default 200 ms) so that the
 * window is wide enough to be hit: a batch that commits and is then followed by the crash within the runner's
 * pause between batches is lost, unless another commit flushed the WAL first (each run commits a few batches
 * only, far fewer rows than space reclaim's VACUUM waits for, whose own commit would flush them).
 */
describe('reliability: a crash right after backfill batches commit loses whole batches only, which the rerun redoes', function () {
  let server: PrivateServer | undefined;
  let knex: Knex;
  let pf: Phaseflag | undefined;

  before(async function () {
    const why = privateServerUnavailable();
    if (why) {
      console.log(`      (skipped: ${why})`);
      this.skip();
    }
    server = await startPrivateServer();
    knex = knexFactory({ client: 'pg', connection: server.url, pool: { min: 0, max: 6 } });
    await knex.raw("ALTER SYSTEM SET wal_writer_delay = '10000ms'");
    await knex.raw('SELECT pg_reload_conf()');
    // The reload is a signal: each process takes the new value when it next looks, so wait until a session sees it.
    await waitFor(async () => (await knex.raw('SHOW wal_writer_delay')).rows[0].wal_writer_delay === '10s', {
      description: 'wal_writer_delay reloaded',
    });
  });
  after(async () => {
    await pf?.close().catch(() => undefined);
    await knex?.destroy();
    await server?.stop();
  });

  /** The store's range after recovery: checkpoint (last key, 0 before the first batch) and rows, with the total. */
  async function recovered(id: string) {
    const r = (
      await knex.raw(
        `SELECT coalesce((checkpoint->>0)::bigint, 0) AS cp, rows_done,
                (SELECT rows_backfilled FROM ??.migrations WHERE id = ?) AS total
           FROM ??.backfill_ranges WHERE migration_id = ?`,
        [STATE, id, STATE, id],
      )
    ).rows[0] as { cp: string; rows_done: string; total: string };
    return { checkpoint: Number(r.cp), rowsDone: Number(r.rows_done), total: Number(r.total) };
  }

  it('pg_ctl restart -m immediate (a crash: stop -m immediate, then start) right after batches commit: the checkpoint recovered is at or before the last seen, the rows agree with it, the rerun completes', async () => {
    assert.equal(
      (await knex.raw('SHOW wal_writer_delay')).rows[0].wal_writer_delay,
      '10s',
      'the private server widens the async-commit window',
    );
    const table = 'orders_async_commit';
    await createAmountTable(knex, table, ROWS);
    pf = new Phaseflag({ knex, stateSchema: STATE, pollIntervalMs: 100, graceMs: 50, logger: quiet });
    await pf.install();
    const m = pf.migration(
      amountInput('rel-async-commit', table, { batch: { size: BATCH, targetBatchMs: 0, pauseMs: 300 } }),
    );
    await m.expand();
    await m.startDualWrite();
    const crashes: { seen: Seen; recovered: number; lostBatches: number; outcome: string }[] = [];
    for (let i = 0; i < CRASHES; i++) {
      // Set by the progress callback: what the runner saw committed, and the crash it started.
      const run: { seen: Seen | null; first: number | null; crash: Promise<void> | null } = {
        seen: null,
        first: null,
        crash: null,
      };
      const after = between(2, 4);
      const outcome = await m
        .backfill({
          reconnectMs: 0, // fail at once: the store is read after recovery, before any resume
          onProgress: (p) => {
            const s = seenOf(p);
            if (!s) return;
            if (s.batches !== run.seen?.batches) run.seen = s;
            run.first ??= s.batches;
            // Right after a batch commits: SIGQUIT to the postmaster, no shutdown checkpoint, WAL buffers gone.
            if (!run.crash && s.batches - run.first + 1 >= after) run.crash = server!.restart('immediate');
          },
        })
        .then(
          (r) => (r.completed ? 'completed' : `stopped in ${r.phase}`),
          (error: unknown) => codeOf(error),
        );
      await run.crash;
      const s = run.seen;
      assert.ok(s && run.crash, `the runner committed ${after} batches before the crash (ended ${outcome})`);
      assert.ok(!outcome.startsWith('untyped'), `the crash surfaced ${outcome}`);
      const got = await recovered(m.id);
      assert.ok(got.checkpoint <= s.checkpoint, `checkpoint ${got.checkpoint} after recovery > ${s.checkpoint} seen`);
      // No half batch: the rows up to the recovered checkpoint are derived, none after it; and no double count.
      const rows = (
        await knex.raw(
          `SELECT count(*) FILTER (WHERE id <= ?)::int AS upto,
                  count(*) FILTER (WHERE id <= ? AND amount IS DISTINCT FROM (amount_cents::numeric / 100)::numeric(12,2))::int AS wrong_upto,
                  count(*) FILTER (WHERE id > ? AND amount IS NOT NULL)::int AS derived_after
             FROM ??`,
          [got.checkpoint, got.checkpoint, got.checkpoint, table],
        )
      ).rows[0] as { upto: number; wrong_upto: number; derived_after: number };
      assert.equal(rows.wrong_upto, 0, 'rows at or before the recovered checkpoint not derived');
      assert.equal(rows.derived_after, 0, 'rows past the recovered checkpoint derived: half a batch survived');
      assert.equal(got.rowsDone, rows.upto, 'the range counts exactly the rows up to its checkpoint');
      assert.equal(got.total, rows.upto, 'rows_backfilled counts exactly the rows up to the checkpoint');
      const lostBatches = Math.round((s.rowsDone - got.rowsDone) / BATCH);
      crashes.push({ seen: s, recovered: got.checkpoint, lostBatches, outcome });
      console.log(
        `      (crash ${i + 1}: runner saw checkpoint ${s.checkpoint} (${s.rowsDone} rows), recovered ${got.checkpoint} (${got.rowsDone} rows): ${lostBatches} committed batch(es) lost; run ended ${outcome})`,
      );
    }
    // The rerun, as an operator's `phaseflag backfill` after the outage: it redoes what the crashes lost.
    const r = await m.backfill();
    assert.ok(r.completed, `the rerun stopped in ${r.phase}`);
    await m.verify();
    assert.equal(await wrongRows(knex, table), 0, 'wrong rows after the rerun');
    assertCoherent(await storeFacts(knex, STATE, m.id, table), 'verified', true);
    const lost = crashes.reduce((n, c) => n + c.lostBatches, 0);
    const withLoss = crashes.filter((c) => c.lostBatches > 0).length;
    recordFinding({
      section: SECTION,
      line:
        `Backfill of ${ROWS.toLocaleString('en')} rows in ${BATCH}-row batches, \`pg_ctl restart -m immediate\` ` +
        `${CRASHES}× right after a batch committed (wal_writer_delay 10 s): ${withLoss} crash(es) lost committed ` +
        `batches (${lost} in all, each whole: rows and checkpoint together)${withLoss < CRASHES ? ', the others none' : ''}; the recovered ` +
        `checkpoint was never past the runner's, rows_backfilled always equalled the rows up to it; the rerun ` +
        `completed, 0 wrong rows, store coherent.`,
      figures: { rows: ROWS, crashes: CRASHES, crashesWithLoss: withLoss, lostBatches: lost },
    });
  });
});
