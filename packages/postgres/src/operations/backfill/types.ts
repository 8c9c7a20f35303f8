import type { BatchSettings, ThrottleSettings } from '@phaseflag/core';
import type { BackfillKnobs } from './knobs.js';

/** One worker's share of the key space: keys > lowerKey (or from the start when null) and <= upperKey. */
export interface BackfillRange {
  readonly worker: number;
  readonly lowerKey: unknown[] | null;
  readonly upperKey: unknown[];
  /** The last key of the last committed batch; null before the first. */
  readonly checkpoint: unknown[] | null;
  readonly done: boolean;
  /** Rows covered (examined and, where needed, updated) by committed batches. */
  readonly rowsDone: number;
  readonly batches: number;
}

export interface BackfillPlanInfo {
  readonly migrationId: string;
  /** False when ranges already existed and were kept (a resume). */
  readonly created: boolean;
  /** How the boundaries were chosen. */
  readonly split: 'arithmetic' | 'sample' | 'single' | 'empty' | 'existing';
  /** The highest key when the ranges were made; rows inserted later are dual-written and never chased. */
  readonly upperKey: unknown[] | null;
  readonly rowsEstimate: number;
  readonly ranges: readonly BackfillRange[];
}

export interface BackfillProgress {
  readonly migrationId: string;
  readonly rowsDone: number;
  readonly rowsEstimate: number;
  readonly ranges: readonly BackfillRange[];
  readonly done: boolean;
  readonly rowsPerSecond?: number;
  readonly etaSeconds?: number;
  /** Set while the runner is holding back (replica lag, throttle query, the operator, the application watch). */
  readonly throttled?: boolean;
  /** Rows the next batch asks for (a running runner's progress only). */
  readonly batchSize?: number;
  /** The operator's knobs in force (a running runner's progress only). */
  readonly knobs?: BackfillKnobs;
}

export interface BackfillRunOptions {
  signal?: AbortSignal;
  onProgress?: (progress: BackfillProgress) => void;
  batch?: Partial<BatchSettings>;
  throttle?: Partial<ThrottleSettings>;
  /** Asked before every batch; false stops the run like an abort. */
  shouldContinue?: () => boolean;
  /**
   * VACUUM the table now and then while the backfill runs, so that later batches reuse the space earlier ones
   * freed instead of growing the table (default on; see reclaim.ts). `everyRows` overrides the interval.
   */
  reclaim?: { enabled?: boolean; everyRows?: number };
  /**
   * Once the backfill completes, rebuild with `REINDEX INDEX CONCURRENTLY` (SHARE UPDATE EXCLUSIVE: reads and
   * writes go on) each index of the table larger than a fresh build would be, as the backfill's row versions leave
   * them (default on; see reindex.ts). Its failures are warnings: the backfill still completes.
   */
  reindex?: { enabled?: boolean };
  /**
   * Run batches with `session_replication_role = replica` when the only trigger they would fire is this
   * migration's own sync trigger, which does nothing for the backfill's writes (default true; needs a role that
   * may set it, else batches fire triggers as usual). Each batch checks the table first: see statements.ts.
   */
  skipOwnTrigger?: boolean;
  /**
   * How long (ms) to keep reconnecting and resuming after the connection to the server is lost (a restart, a
   * killed backend, a network cut) before failing with PF_CONNECTION_LOST; 0 fails at once. Default 60 000.
   */
  reconnectMs?: number;
}

export type BackfillStop = 'complete' | 'aborted' | 'phase-changed';

export interface BackfillResult {
  /** Every range has reached its upper key (also true when a previous run had finished it). */
  readonly completed: boolean;
  readonly stoppedBy: BackfillStop;
  /** Rows this run changed (rows already equal to the expression are skipped, not rewritten). */
  readonly rowsUpdated: number;
  /** Rows this run examined. */
  readonly rowsScanned: number;
  readonly batches: number;
  readonly durationMs: number;
  /** Time spent held back by throttling, summed over workers. */
  readonly throttledMs: number;
  readonly workers: number;
  /** VACUUMs the run made to reuse freed space (see BackfillRunOptions.reclaim), and their time (beside the workers, but the final one in series). */
  readonly vacuums: number;
  readonly vacuumMs: number;
  /** Indexes rebuilt after the backfill (see BackfillRunOptions.reindex), and the time spent on them, leftovers included. */
  readonly reindexes: number;
  readonly reindexMs: number;
  /** Batches that ran without firing the table's triggers (see BackfillRunOptions.skipOwnTrigger). */
  readonly batchesWithoutTriggers: number;
}
