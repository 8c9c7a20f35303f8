import { isPhaseflagError, StateError, ValidationError, type Migration } from '@phaseflag/core';
import type { ResolvedMigration } from '../../catalog/resolved.js';
import type { ExecutorContext } from '../../context.js';
import { isConnectionLost } from '../../sql/pg-error.js';
import { parseSettings, runBackfillOnce } from './runner.js';
import type { BackfillResult, BackfillRunOptions } from './types.js';

/** How long a backfill keeps trying to get its connection back, unless the run options say otherwise. */
export const DEFAULT_RECONNECT_MS = 60_000;
const FIRST_RETRY_MS = 250;
const MAX_RETRY_MS = 5_000;

/**
 * Runs the backfill, and runs it again when the connection to the server is lost (a server restart, a killed
 * backend, a network cut): each batch commits with its checkpoint, so a new run resumes after the last batch
 * that committed, under a runner lock taken anew. Retries back off from 250 ms to 5 s for `reconnectMs` after
 * the loss (a run that commits a batch again starts the count over); then the run fails with
 * PF_CONNECTION_LOST. Any other error, and an abort, end it at once.
 */
export async function runBackfill(
  ctx: ExecutorContext,
  r: ResolvedMigration,
  opts: BackfillRunOptions = {},
): Promise<BackfillResult> {
  const id = r.migration.id;
  const limitMs = checkBackfillOptions(r.migration, opts);
  let lostAt: number | null = null;
  let retries = 0;
  const onProgress: BackfillRunOptions['onProgress'] = (p) => {
    lostAt = null; // a batch committed: the connection is back
    opts.onProgress?.(p);
  };
  for (;;) {
    try {
      return await runBackfillOnce(ctx, r, { ...opts, onProgress });
    } catch (error) {
      // After a loss, the lock may still be held by our own old session until the server notices it is gone
      // (a network cut): wait for it within the same window, and report it as it is when the window ends.
      const ghost = lostAt !== null && isPhaseflagError(error, 'PF_BACKFILL_LOCKED');
      if (ghost && ctx.clock.now() - lostAt! >= limitMs) throw error;
      if (!isConnectionLost(error) && !ghost) throw error;
      const now = ctx.clock.now();
      if (lostAt === null) {
        lostAt = now;
        retries = 0;
      }
      const lostMs = now - lostAt;
      if (opts.signal?.aborted || lostMs >= limitMs) throw connectionLost(id, error, lostMs, retries);
      retries++;
      ctx.logger.warn(`backfill of ${id}: connection lost (${(error as Error).message}); resuming`, {
        migrationId: id,
        retry: retries,
        lostMs,
      });
      await ctx.clock.sleep(Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** (retries - 1), limitMs - lostMs), opts.signal);
      if (opts.signal?.aborted) throw connectionLost(id, error, ctx.clock.now() - lostAt, retries);
    }
  }
}

function connectionLost(id: string, error: unknown, lostMs: number, retries: number): StateError {
  return new StateError(
    'PF_CONNECTION_LOST',
    `The backfill of "${id}" lost its database connection (${(error as Error)?.message ?? String(error)}) and did not get it back (${retries} retries over ${Math.round(lostMs)} ms).`,
    {
      value: { lostMs: Math.round(lostMs), retries },
      migrationId: id,
      cause: error,
      hint: 'Check that the server is up and reachable, then run the backfill again: it resumes after the last committed batch (raise reconnectMs to wait longer by itself).',
    },
  );
}

/**
 * The run's options checked against the declaration's limits, before anything moves: a transition calls it
 * first, so a bad batch size, throttle, reconnectMs or reindex is PF_INVALID_OPTIONS with the phase and the ranges as
 * they were. Returns how long to reconnect after a lost connection.
 */
export function checkBackfillOptions(
  m: Migration,
  opts: Pick<BackfillRunOptions, 'batch' | 'throttle' | 'reconnectMs' | 'reindex'>,
): number {
  parseSettings('batch', { ...m.batch, ...opts.batch }, m.id);
  parseSettings('throttle', { ...m.throttle, ...opts.throttle }, m.id);
  const reindex = opts.reindex as unknown;
  const reindexOk =
    reindex === undefined ||
    (typeof reindex === 'object' &&
      reindex !== null &&
      Object.entries(reindex).every(([k, v]) => k === 'enabled' && (v === undefined || typeof v === 'boolean')));
  if (!reindexOk) {
    throw new ValidationError('PF_INVALID_OPTIONS', `Invalid reindex option ${JSON.stringify(reindex)}.`, {
      value: reindex,
      migrationId: m.id,
      hint: 'Use { enabled: false } to skip the index rebuild after the backfill, or leave it out (on by default).',
    });
  }
  const limitMs = opts.reconnectMs ?? DEFAULT_RECONNECT_MS;
  if (typeof limitMs !== 'number' || !Number.isFinite(limitMs) || limitMs < 0) {
    throw new ValidationError('PF_INVALID_OPTIONS', `Invalid reconnectMs ${JSON.stringify(opts.reconnectMs)}.`, {
      value: opts.reconnectMs,
      migrationId: m.id,
      hint: 'Use a number of milliseconds, 0 or more (0 fails at once when the connection is lost).',
    });
  }
  return limitMs;
}
