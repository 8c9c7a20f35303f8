import { Session } from '../../driver/session.js';
import { AdaptiveBatchSize } from './batch-size.js';
import type { RunShared, WorkerEnd } from './run-shared.js';
import type { StoredRange } from './state.js';
import { walkRange } from './worker.js';

/** How a run's workers ended: the end of each range walk, and the first error any of them met. */
export interface PoolOutcome {
  readonly ends: WorkerEnd[];
  readonly failure: unknown;
}

/**
 * Runs `workers` workers over the queue of ranges, each on a connection of its own, each taking the next range
 * when it has walked one. The first error stops the others after their current batch (through `stop`).
 */
export async function runWorkerPool(
  shared: RunShared,
  queue: StoredRange[],
  workers: number,
  stop: AbortController,
): Promise<PoolOutcome> {
  const ends: WorkerEnd[] = [];
  let failure: unknown;
  const worker = async () => {
    let session: Session | undefined;
    try {
      session = await Session.open(shared.ctx.knex);
      shared.watch.addOwn(session.pid);
      // One sizer per worker: what it learnt about the cost per row carries over to its next range.
      const sizer = new AdaptiveBatchSize(shared.batch, () => shared.watch.sizeCap);
      for (let range = queue.shift(); range; range = queue.shift()) {
        const end = await walkRange(shared, session, range, sizer);
        ends.push(end);
        if (end !== 'done') return;
      }
      await flushStatistics(session, shared.resolved.serverVersion);
    } catch (error) {
      failure ??= error;
      stop.abort(); // the other workers finish their current batch and stop
    } finally {
      shared.watch.removeOwn(session?.pid ?? null);
      await session?.release();
    }
  };
  await Promise.all(Array.from({ length: workers }, worker));
  return { ends, failure };
}

/**
 * Sends this session's table statistics now rather than within the next second or so (PG 15+). Otherwise the
 * updates of the last batches reach pg_stat_user_tables after the run's final VACUUM has reported the table
 * clean, and count as dead tuples that no longer exist: misleading to read, and enough to send autovacuum over a
 * table that needs nothing.
 */
async function flushStatistics(session: Session, serverVersion: number): Promise<void> {
  if (serverVersion < 150000) return;
  await session.query('SELECT pg_stat_force_next_flush()').catch(() => undefined);
}
