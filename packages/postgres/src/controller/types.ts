import type { FlagSource, Logger, NextStep, Phase } from '@phaseflag/core';
import type { MigrationHandle } from '../api/handle.js';
import type { ExecutorContext } from '../context.js';
import type { DriftReport } from '../operations/drift/types.js';
import type { BackfillOptions, InstanceStatus } from '../types.js';
import type { ControllerEvent } from './events.js';

export interface ControllerOptions {
  /** The operator's intent. */
  flags: FlagSource;
  /** Names this controller in leadership, events and spans (default: host, pid and a random suffix). */
  instanceId?: string;
  /** Periodic re-check, on top of flag change events and LISTEN/NOTIFY; followers retry leadership this often. Default 5000. */
  intervalMs?: number;
  /** Contract also drops the old column. Default false: no flag drops a column by itself. */
  dropOldColumn?: boolean;
  /** Default: the Phaseflag's logger. */
  logger?: Logger;
  /** Batch and throttle settings for the backfills this controller runs (default: the migration's), and `reindex`. */
  backfill?: Pick<BackfillOptions, 'batch' | 'throttle' | 'onProgress' | 'reindex'>;
  /**
   * Told of each refusal this controller records, each transition it applies and each change of its leadership,
   * as they happen (see ControllerEvent). Called synchronously; a listener that throws is logged, not fatal.
   */
  onEvent?: (event: ControllerEvent) => void;
}

/** What one controller knows of one migration, as of its last pass. */
export interface ControllerMigrationStatus {
  readonly migrationId: string;
  readonly leader: boolean;
  readonly phase: Phase | null;
  readonly lastStep: NextStep | null;
  readonly backfillRunning: boolean;
  /** Instances whose heartbeat is older than the TTL: ignored by every guard, listed here. */
  readonly staleInstances: readonly InstanceStatus[];
  readonly liveInstances: readonly InstanceStatus[];
  readonly lastError: string | null;
  /** When `readOld()` by hand held reads on the old column; null when no hold stands (as of the last pass). */
  readonly readsHeldSince: Date | null;
  /** The table as last inspected before a step (null before the first): while `blocking`, steps are refused (PF_DRIFT). */
  readonly drift: DriftReport | null;
}

/** What a controller does with a migration: the handle's requests it makes, nothing else. */
export type ControlledMigration = Pick<
  MigrationHandle,
  | 'id'
  | 'migration'
  | 'inspect'
  | 'drift'
  | 'watch'
  | 'recordRefusal'
  | 'expand'
  | 'startDualWrite'
  | 'stopDualWrite'
  | 'pause'
  | 'readNew'
  | 'readOld'
  | 'releaseReadHold'
  | 'contract'
  | 'startBackfill'
  | 'runBackfill'
  | 'verify'
>;

/** What a controller needs of its executor: the context (connections, telemetry, clock) and the instance TTL. */
export interface ControllerDeps {
  readonly ctx: ExecutorContext;
  readonly instanceTtlMs: number;
}
