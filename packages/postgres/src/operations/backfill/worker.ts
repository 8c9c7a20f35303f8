import type { Span } from '@opentelemetry/api';
import { ATTR, CatalogError, ConflictError, SPAN } from '@phaseflag/core';
import { withSpan } from '../../telemetry/with-span.js';
import type { AdaptiveBatchSize } from './batch-size.js';
import { isRetryable, type Session } from '../../driver/session.js';
import type { StoredRange } from './state.js';
import type { ProbeRow, ScanRow } from './statements.js';
import { BACKFILL_ATTR, type RangeState, type RunShared, type WorkerEnd } from './run-shared.js';
import { isRowLevelError, locateUnderivable } from './underivable-rows.js';

const MAX_ATTEMPTS = 10;
const RETRY_BASE_MS = 50;
const RETRY_MAX_MS = 2000;
/** Times one batch looks for rows it cannot derive (rows written meanwhile may add new ones). */
const MAX_LOCATES = 3;

class PhaseChanged extends Error {}
class LockLost extends Error {}

type BatchOutcome =
  | { kind: 'phase-changed' }
  | {
      kind: 'committed';
      scanned: number;
      updated: number;
      lastKey: string | null;
      lastDisplay: unknown[] | null;
      done: boolean;
      rowsDone: number;
      triggersSkipped: boolean;
    };

/**
 * Walks one range by keyset pagination until it reaches its upper key, the run is stopped, or the phase leaves
 * 'backfilling'. Only the current checkpoint (one key) is kept in memory, whatever the table's size.
 */
export async function walkRange(
  shared: RunShared,
  session: Session,
  range: StoredRange,
  sizer: AdaptiveBatchSize,
): Promise<WorkerEnd> {
  const { ctx, batch } = shared;
  const state: RangeState = {
    checkpointText: range.checkpointText,
    checkpoint: range.checkpoint,
    rowsDone: range.rowsDone,
    batches: range.batches,
    done: range.done,
  };
  // The first batch starts after the checkpoint, or after the range's lower bound when nothing is committed yet.
  let from = range.checkpointText ?? range.lowerText;
  for (;;) {
    if (shared.stop.aborted || shared.shouldContinue?.() === false) return 'stopped';
    const waitedMs = (await shared.throttler.wait(shared.stop)) + (await shared.watch.hold(shared.stop));
    if (waitedMs > 0) {
      shared.totals.throttledMs += waitedMs;
      shared.instruments.throttleMs.record(waitedMs, { [ATTR.migrationId]: shared.migrationId });
    }
    if (shared.stop.aborted) return 'stopped';
    const fixed = shared.knobs.current.batchSize;
    const size = fixed ?? sizer.size;
    const started = ctx.clock.now();
    const outcome = await runBatchTraced(shared, session, range, from, size, waitedMs);
    const ms = ctx.clock.now() - started;
    if (outcome.kind === 'phase-changed') return 'phase-changed';
    // A size the operator fixed is not a measurement of what the adaptive sizing would choose.
    if (fixed === null) sizer.observe(outcome.scanned, ms);
    shared.next.batchSize = shared.knobs.current.batchSize ?? sizer.size;
    shared.totals.batches++;
    shared.totals.rowsScanned += outcome.scanned;
    shared.totals.rowsUpdated += outcome.updated;
    if (outcome.triggersSkipped) shared.totals.batchesWithoutTriggers++;
    shared.reclaimer.noteUpdated(outcome.updated);
    shared.instruments.rows.add(outcome.scanned, { [ATTR.migrationId]: shared.migrationId });
    shared.instruments.batchMs.record(ms, { [ATTR.migrationId]: shared.migrationId });
    if (outcome.lastKey !== null) {
      from = outcome.lastKey;
      state.checkpointText = outcome.lastKey;
      state.checkpoint = outcome.lastDisplay;
    }
    state.rowsDone = outcome.rowsDone;
    state.batches++;
    state.done = outcome.done;
    shared.onBatch(range.worker, state);
    if (outcome.done) return 'done';
    const pauseMs = shared.knobs.current.pauseMs ?? batch.pauseMs;
    if (pauseMs > 0) await ctx.clock.sleep(pauseMs, shared.stop);
  }
}

async function runBatchTraced(
  shared: RunShared,
  session: Session,
  range: StoredRange,
  from: string | null,
  size: number,
  waitedMs: number,
): Promise<BatchOutcome> {
  const attributes = {
    [ATTR.migrationId]: shared.migrationId,
    [ATTR.worker]: range.worker,
    [ATTR.batchSize]: size,
    [ATTR.keyFrom]: from ?? '',
    [ATTR.throttled]: waitedMs > 0,
    [ATTR.throttledMs]: waitedMs,
  };
  try {
    // Active while the batch runs, under the backfill's span.
    return await withSpan(
      shared.ctx.tracer,
      SPAN.backfillBatch,
      { attributes },
      async (span) => {
        const outcome = await runBatchWithRetries(shared, session, range, from, size, span);
        if (outcome.kind === 'committed') {
          span.setAttributes({
            [ATTR.rows]: outcome.scanned,
            [BACKFILL_ATTR.rowsUpdated]: outcome.updated,
            [BACKFILL_ATTR.triggersSkipped]: outcome.triggersSkipped,
            [ATTR.keyTo]: outcome.lastKey ?? from ?? '',
            [BACKFILL_ATTR.committed]: true,
          });
        } else {
          span.setAttributes({ [BACKFILL_ATTR.committed]: false, [ATTR.reason]: 'phase is no longer backfilling' });
        }
        return outcome;
      },
      { parent: shared.parent },
    );
  } catch (error) {
    // The span records the error as thrown; the caller gets it explained.
    throw explainBatchError(error, shared.migrationId, from);
  }
}

/**
 * A data error (class 22: division by zero, a value out of range for the new type) or an integrity error (class
 * 23: the new column's CHECK or NOT NULL) comes from the rows, not from the runner: say where, and that retrying
 * as-is will fail again. The batch was rolled back with its checkpoint, so nothing is lost.
 */
function explainBatchError(error: unknown, migrationId: string, from: string | null): unknown {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !(code.startsWith('22') || code.startsWith('23'))) return error;
  return new CatalogError(
    'PF_INVALID_EXPRESSION',
    `The backfill of "${migrationId}" failed on rows after key ${from ?? '(start)'}: ${(error as Error).message}.`,
    {
      value: { afterKey: from, sqlstate: code },
      migrationId,
      cause: error,
      hint: 'Fix the expression (or the rows it cannot convert) and run the backfill again: it resumes after the last committed batch.',
    },
  );
}

async function runBatchWithRetries(
  shared: RunShared,
  session: Session,
  range: StoredRange,
  from: string | null,
  size: number,
  span: Span,
): Promise<BatchOutcome> {
  let excluded: string[] | null = null;
  let located = 0;
  for (let attempt = 1; ; attempt++) {
    try {
      return await runBatch(shared, session, range, from, size, excluded);
    } catch (error) {
      if (error instanceof PhaseChanged) return { kind: 'phase-changed' };
      if (error instanceof LockLost) throw lockLost(shared.migrationId, shared.fence.pid);
      if (isRowLevelError(error) && located < MAX_LOCATES) {
        // A row the expression cannot derive: find it; a recorded one is left alone, any other stops the run.
        located++;
        const keys = await locateUnderivable(shared, session, shared.resolved, range, from, size);
        if (keys === null) throw error;
        excluded = [...new Set([...(excluded ?? []), ...keys])];
        span.addEvent('underivable.skipped', { 'phaseflag.underivable.keys': excluded.join(' ') });
        continue;
      }
      if (!isRetryable(error) || attempt >= MAX_ATTEMPTS || shared.stop.aborted) throw error;
      // A lock held by the application, a deadlock or a serialization failure: the batch was rolled back as a
      // whole (checkpoint included), so trying the same range again is safe.
      span.addEvent('retry', { [ATTR.attempts]: attempt, 'error.code': String((error as { code?: unknown }).code) });
      span.setAttribute(ATTR.attempts, attempt + 1);
      await shared.ctx.clock.sleep(Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** (attempt - 1)), shared.stop);
    }
  }
}

async function runBatch(
  shared: RunShared,
  session: Session,
  range: StoredRange,
  from: string | null,
  size: number,
  excluded: string[] | null,
): Promise<BatchOutcome> {
  const st = shared.statements;
  const bypass = shared.triggerBypass;
  // Three round trips: BEGIN with the phase and the probe; the UPDATE with the commit statement; COMMIT. The values
  // go inline (the simple protocol takes no bind parameters), which halves the batch's fixed cost: measured on 1M
  // rows in 30 ms batches, six round trips took about 3 ms between two UPDATEs, 10% of the batch.
  const opening = st.opening({ migrationId: shared.migrationId, bypass, from, upper: range.upperText, size });
  return session.transaction(
    async ([phaseRows, probeRows]) => {
      const phase = phaseRows![0] as { phase: string; replication_role?: string } | undefined;
      if (phase?.phase !== 'backfilling') throw new PhaseChanged();
      const triggersSkipped = bypass !== null && phase.replication_role === 'replica';
      const probe = probeRows![0] as ProbeRow | undefined;
      const scan: ScanRow = probe
        ? {
            scanned: size,
            last_key: probe.last_key,
            last_key_display: probe.last_key_display,
            reached_upper: probe.reached_upper,
          }
        : (from === null
            ? await session.one<ScanRow>(st.scanFirst, [range.upperText, size])
            : await session.one<ScanRow>(st.scanNext, [from, range.upperText, size]))!;
      // Fewer rows than asked for means nothing is left up to the upper key (as of this statement's snapshot;
      // anything inserted since is dual-written and needs no backfill).
      const done = scan.scanned < size || scan.reached_upper === true;
      const last = scan.scanned === 0 ? null : scan.last_key;
      const results = await session.many(
        st.closing({
          migrationId: shared.migrationId,
          worker: range.worker,
          from,
          last,
          excluded: excluded === null ? null : `[${excluded.join(',')}]`,
          scanned: scan.scanned,
          done,
          pid: shared.fence.pid,
          key: shared.fence.key,
        }),
      );
      const updated = last === null ? 0 : results[0]!.rowCount;
      const counted = results[results.length - 1]!.rows as { rows_done: string; held: boolean }[];
      if (counted.length === 0) throw new PhaseChanged(); // rolls back the UPDATE with it
      // The fence against a second runner, read once the commit statement holds the migration row's lock, which a
      // runner taking the lock over takes first (holder.ts, takeOver): a runner whose lock went with its
      // connection (a killed backend, a network cut) rolls this batch back and stops.
      if (counted[0]!.held !== true) throw new LockLost();
      return {
        kind: 'committed' as const,
        scanned: scan.scanned,
        updated,
        lastKey: scan.last_key,
        lastDisplay: scan.last_key_display,
        done,
        rowsDone: Number(counted[0]!.rows_done),
        triggersSkipped,
      };
      // asyncCommit: the batch's COMMIT does not wait for its WAL to reach disk (one fsync per batch was 5-7% of a
      // batch's time in the benchmarks). Nothing is at risk: the rows and the checkpoint that counts them commit in
      // one transaction, so a server crash in the next few hundred milliseconds (wal_writer_delay × 3) loses both
      // together and the resumed backfill redoes the batch. Any later synchronous commit, the engine's transition
      // to 'backfilled' or an application write to the same rows, flushes the WAL up to itself, batches included.
    },
    {
      lockTimeoutMs: shared.lockTimeoutMs,
      searchPath: shared.searchPath,
      asyncCommit: true,
      ...(bypass ? { lockRowExclusive: bypass.table } : {}),
      first: opening,
    },
  );
}

function lockLost(migrationId: string, pid: number): ConflictError {
  return new ConflictError(
    'PF_BACKFILL_LOCK_LOST',
    `The backfill of "${migrationId}" lost its runner lock (its connection, backend pid ${pid}, was closed); it stopped without committing another batch.`,
    {
      value: { pid },
      migrationId,
      hint: 'Another runner may have taken over (see `phaseflag status`); otherwise run the backfill again: it resumes after the last committed batch.',
    },
  );
}
