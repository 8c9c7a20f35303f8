/**
 * The operator's part of the automatic demo: each step is one change in Unleash through its Admin API (what the
 * UI's switches and slider call), then a wait until every service instance reports the phase it leads to. The
 * services' controllers do the work; the demo only toggles and watches.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Migration } from '@phaseflag/core';
import { bold, type Reporter } from './reporter.js';
import type { Stack } from './stack.js';
import { finalState } from './final-state.js';

export interface StepTiming {
  label: string;
  /** From the Admin API call until every instance applied the phase it asked for. */
  appliedMs: number;
  /** From the Admin API call until the step settled (for backfill: verified). */
  settledMs: number;
}

export interface WalkResult {
  steps: StepTiming[];
  /** Rows of orders, and rows whose new column equals the backfill expression, counted just before contract. */
  rowsTotal: number;
  rowsCorrect: number;
  /** What phaseflag recorded: rows its backfill wrote, and its own verify over every row. */
  rowsBackfilled: number;
  verify: { rowsChecked: number; mismatches: number } | null;
}

const DWELL_MS = 1_500; // traffic runs through every phase for a moment, so each is exercised under load

export async function walk(
  stack: Stack,
  reporter: Reporter,
  migration: Migration,
  rows: number,
  signal?: AbortSignal,
): Promise<WalkResult> {
  const { flags: admin } = stack;
  const flags = migration.flags;
  const id = migration.id;
  const steps: StepTiming[] = [];
  const until = (check: () => boolean | Promise<boolean>, timeoutMs: number, what: string) =>
    waitUntil(check, timeoutMs, what, signal);
  const allReach = (phase: string, timeoutMs: number) =>
    until(
      () => alive(stack) && reporter.allReached(id, phase),
      timeoutMs,
      `every instance to report ${id} in phase ${phase}`,
    );
  const readsNew = async (want: boolean | 'partial') =>
    (await Promise.all(stack.services.map(async (s) => (await s.view()).find((m) => m.id === id)?.readsNew))).every(
      (r) => r === want,
    );

  const step = async (
    label: string,
    act: () => Promise<void>,
    applied: () => Promise<void>,
    settled?: () => Promise<void>,
  ) => {
    signal?.throwIfAborted();
    reporter.note(`operator: ${bold(label)}  (Unleash Admin API)`);
    const t0 = performance.now();
    await act();
    await applied();
    const appliedMs = performance.now() - t0;
    await settled?.();
    steps.push({ label, appliedMs, settledMs: performance.now() - t0 });
    await sleep(DWELL_MS);
  };

  // A backfill on a big table takes a while; allow ~2 ms a row on top of a minute.
  const backfillTimeout = 60_000 + rows * 2;

  await step(
    `${flags.dualWrite} on`,
    () => admin.enable(flags.dualWrite),
    () => allReach('dual-write', 60_000),
  );
  await step(
    `${flags.backfill} on`,
    () => admin.enable(flags.backfill),
    () => allReach('backfilling', 60_000),
    async () => {
      await allReach('backfilled', backfillTimeout);
      reporter.note(`${id}: verify runs by itself once the backfill is complete`);
      await allReach('verified', backfillTimeout);
    },
  );
  const { record } = await stack.pf.migration(migration).status();
  const verify = record.verifyResult
    ? { rowsChecked: record.verifyResult.rowsChecked, mismatches: record.verifyResult.mismatches }
    : null;
  reporter.note(
    `${id}: backfilled ${record.rowsBackfilled.toLocaleString('en-US')} rows; verify checked ${verify?.rowsChecked.toLocaleString('en-US') ?? '?'} rows, ${verify?.mismatches ?? '?'} mismatches`,
  );

  const readNewStrategy = stack.strategyIds.get(flags.readNew);
  if (!readNewStrategy) throw new Error(`provisionFlags did not report a strategy for ${flags.readNew}`);
  await step(
    `${flags.readNew} on at 50%`,
    async () => {
      await admin.setRollout(flags.readNew, 50, { strategyId: readNewStrategy });
      await admin.enable(flags.readNew);
    },
    () => allReach('read-new', 60_000),
    () => until(() => readsNew('partial'), 30_000, 'every instance to read new for some users'),
  );
  await step(
    `${flags.readNew} rollout 100%`,
    () => admin.setRollout(flags.readNew, 100, { strategyId: readNewStrategy }),
    () => until(() => readsNew(true), 30_000, 'every instance to read the new column for every request'),
  );

  // Before contract both columns are kept right, so every row can be checked against the backfill expression.
  const { rowsTotal, rowsCorrect } = await checkRows(stack, migration);
  reporter.note(
    `database: ${rowsCorrect.toLocaleString('en-US')} of ${rowsTotal.toLocaleString('en-US')} orders hold ${migration.newColumn.name} = ${migration.backfill}`,
  );

  // Contract's guard wants every live instance to have reported (heartbeat) that it reads the new column; an
  // operator checks `phaseflag status` first rather than collect a refusal.
  reporter.note(`operator: waits until every instance reports reading ${migration.newColumn.name} (phaseflag status)`);
  await until(
    async () => (await stack.pf.migration(migration).status()).instances.every((i) => !i.live || !i.readsOld),
    60_000,
    'every live instance to report that it reads the new column',
  );
  await step(
    `${flags.contract} on`,
    () => admin.enable(flags.contract),
    () => allReach('contracted', 60_000),
    // Contract's schema work (NOT NULL on the new column, the trigger's removal) follows the phase change, after
    // the grace period that lets every instance stop writing the old column first.
    () =>
      until(
        async () => migration.newColumn.nullable || (await finalState(stack, migration)).newColumnNotNull,
        60_000,
        `${id}: NOT NULL on ${migration.newColumn.name}`,
      ),
  );
  return { steps, rowsTotal, rowsCorrect, rowsBackfilled: record.rowsBackfilled, verify };
}

/** Counts rows whose new column equals the backfill expression (one statement: one consistent snapshot). */
async function checkRows(stack: Stack, m: Migration): Promise<{ rowsTotal: number; rowsCorrect: number }> {
  // The expression is the migration's own declaration (validated by phaseflag), never user input.
  const result = await stack.knex.raw(
    `SELECT count(*) AS total, count(*) FILTER (WHERE ?? IS NOT DISTINCT FROM (${m.backfill})::${m.newColumn.type}) AS correct FROM ??`,
    [m.newColumn.name, m.table.name],
  );
  const row = (result as { rows: Array<{ total: string; correct: string }> }).rows[0]!;
  return { rowsTotal: Number(row.total), rowsCorrect: Number(row.correct) };
}

/** Throws (ending the wait) when an instance died: waiting for it to report would only time out. */
function alive(stack: Stack): true {
  const dead = stack.services.find((s) => !s.alive);
  if (dead)
    throw new DeadInstanceError(
      `${dead.instanceId} exited mid-migration; its last log lines:\n    ${dead.stderr().split('\n').join('\n    ')}`,
    );
  return true;
}

class DeadInstanceError extends Error {}

async function waitUntil(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
  signal?: AbortSignal,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    signal?.throwIfAborted();
    try {
      if (await check()) return;
    } catch (error) {
      // An instance busy answering its first /phaseflag counts as "not yet"; a dead one ends the wait.
      if (error instanceof DeadInstanceError) throw error;
    }
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(50);
  }
}
