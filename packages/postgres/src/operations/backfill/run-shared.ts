import type { Context, Counter, Histogram, Meter } from '@opentelemetry/api';
import { METRIC, type BatchSettings } from '@phaseflag/core';
import type { ResolvedMigration } from '../../catalog/resolved.js';
import type { ExecutorContext } from '../../context.js';
import type { LiveKnobs } from './knobs.js';
import type { SpaceReclaimer } from './reclaim.js';
import type { BatchStatements } from './statements.js';
import type { Throttler } from './throttle.js';
import type { ApplicationWatch } from './application-watch.js';

/** Attribute names not (yet) in core's ATTR. */
export const BACKFILL_ATTR = {
  workers: 'phaseflag.backfill.workers',
  batches: 'phaseflag.backfill.batches',
  stoppedBy: 'phaseflag.backfill.stopped_by',
  rowsUpdated: 'phaseflag.rows.updated',
  committed: 'phaseflag.batch.committed',
  vacuums: 'phaseflag.backfill.vacuums',
  triggersSkipped: 'phaseflag.batch.triggers_skipped',
  batchesWithoutTriggers: 'phaseflag.backfill.batches_without_triggers',
  vacuumMs: 'phaseflag.backfill.vacuum_ms',
  reindexes: 'phaseflag.backfill.reindexes',
  reindexMs: 'phaseflag.backfill.reindex_ms',
} as const;

/** Everything a worker shares with the run: statements, instruments, throttle, stop signal and totals. */
export interface RunShared {
  readonly ctx: ExecutorContext;
  readonly migrationId: string;
  readonly resolved: ResolvedMigration;
  readonly statements: BatchStatements;
  readonly batch: BatchSettings;
  readonly lockTimeoutMs: number;
  /** Where the expression's names were resolved (ResolvedMigration.searchPath). */
  readonly searchPath: readonly string[] | undefined;
  readonly throttler: Throttler;
  /** Holds back and caps the batches' size while the application waits on them or the server is loaded. */
  readonly watch: ApplicationWatch;
  /** Runs VACUUM now and then so later batches reuse the space earlier ones freed. */
  readonly reclaimer: SpaceReclaimer;
  readonly stop: AbortSignal;
  /** The runner lock as each batch checks it before committing (see worker.ts). */
  readonly fence: RunnerFence;
  readonly shouldContinue: (() => boolean) | undefined;
  readonly parent: Context;
  readonly instruments: BackfillInstruments;
  readonly totals: {
    rowsUpdated: number;
    rowsScanned: number;
    batches: number;
    throttledMs: number;
    batchesWithoutTriggers: number;
  };
  /**
   * Set when the run may skip the table's triggers (the role may set session_replication_role and the caller
   * did not opt out); each batch still checks the table's triggers and constraints itself (triggerBypassSql).
   */
  readonly triggerBypass: { table: string; ownTrigger: string; newColumn: string } | null;
  /** The operator's knobs (batch size, throttle, delay), kept current while the run lives. */
  readonly knobs: LiveKnobs;
  /** The size the next batch will ask for (the last worker to decide wins), for progress displays. */
  readonly next: { batchSize: number };
  /** Called after each committed batch with the range's new state. */
  readonly onBatch: (worker: number, state: RangeState) => void;
}

/** The backend holding this run's runner lock, and the lock's key. */
export interface RunnerFence {
  readonly pid: number;
  readonly key: string;
}

export interface RangeState {
  checkpointText: string | null;
  checkpoint: unknown[] | null;
  rowsDone: number;
  batches: number;
  done: boolean;
}

export type WorkerEnd = 'done' | 'stopped' | 'phase-changed';

export interface BackfillInstruments {
  rows: Counter;
  batchMs: Histogram;
  throttleMs: Histogram;
}

export function backfillInstruments(meter: Meter): BackfillInstruments {
  return {
    rows: meter.createCounter(METRIC.rowsBackfilled, {
      unit: '{row}',
      description: 'Rows examined by committed backfill batches',
    }),
    batchMs: meter.createHistogram(METRIC.batchDuration, {
      unit: 'ms',
      description: 'Duration of one backfill batch transaction',
    }),
    throttleMs: meter.createHistogram(METRIC.throttleWait, {
      unit: 'ms',
      description: 'Time a backfill worker held back for replica lag, the throttle query or the application',
    }),
  };
}
