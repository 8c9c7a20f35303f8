import type { Logger } from '@phaseflag/core';
import type { BackfillOptions } from '../types.js';
import type { Tracked } from './tracked.js';

/**
 * Runs a migration's backfill in the background for its leader: a run that ends (complete, paused, rolled back)
 * asks for the next pass through `onEnded`; one that fails is reported once per message and retried at the next
 * interval rather than at once (another runner — a CLI backfill, a leader that has not noticed it lost — may hold
 * the backfill lock). `t.runner` is set while it runs; aborting it stops the run after its current batch. `running`
 * holds the run (a promise that never rejects) until it has ended.
 */
export function startBackfillRunner(
  t: Tracked,
  options: Omit<BackfillOptions, 'signal'>,
  logger: Logger,
  onEnded: () => void,
  running: Set<Promise<void>>,
): void {
  const abort = new AbortController();
  const h = t.handle;
  const done = h
    .runBackfill({ ...options, signal: abort.signal })
    .then(
      (result) => {
        t.runnerErrorReported = null;
        logger.info(`phaseflag: controller: ${h.id}: backfill stopped (${result.stoppedBy}), phase ${result.phase}`, {
          migrationId: h.id,
          ...result,
        });
        return true;
      },
      (error: unknown) => {
        const message = (error as Error).message;
        if (t.runnerErrorReported !== message)
          logger.warn(`phaseflag: controller: ${h.id}: backfill runner failed: ${message}`, { migrationId: h.id });
        t.runnerErrorReported = message;
        t.status = { ...t.status, lastError: message };
        return false;
      },
    )
    .then((ended) => {
      t.runner = undefined;
      if (ended) onEnded();
    });
  t.runner = { abort, done };
  running.add(done);
  void done.finally(() => running.delete(done));
}
