import type { Attributes, Link } from '@opentelemetry/api';
import type { Action, Migration, MigrationInput, Phase, ShadowSettings } from '@phaseflag/core';
import type { LockWait } from './context.js';
import type { BackfillProgress, BackfillResult } from './operations/backfill/types.js';
import type { DriftReport } from './operations/drift/types.js';
import type { UnderivableSummary } from './operations/underivable/store.js';
import type { VerifyResult } from './operations/verify.js';
import type { ShadowSummary } from './store/shadow-reads.js';

/**
 * The vocabulary the public API shares between its layers (handle, transitions, controller): what causes a
 * transition, the options a request takes, and what status reports. Types only; no module here imports a class.
 */

/**
 * What caused a transition, for the record: span links (the flag change, the controller's leadership), extra span
 * attributes (feature-flag attributes), and a detail stored with the transition's event row.
 */
export interface TransitionCause {
  links?: Link[];
  attributes?: Attributes;
  detail?: Record<string, unknown>;
  /**
   * Called once the phase change is committed (before what follows it, e.g. contract's drops): a controller
   * reports the transitions it applies through it. An exception it throws is logged and ignored.
   */
  onApplied?: (applied: AppliedTransition) => void;
}

/** A committed phase change, as `TransitionCause.onApplied` reports it. */
export interface AppliedTransition {
  readonly action: Action;
  readonly from: Phase;
  readonly to: Phase;
  readonly at: Date;
}

export interface TransitionOptions {
  cause?: TransitionCause;
  /**
   * Told while one of the transition's DDL statements waits for its table lock (after 250 ms, then about once a
   * second), with the blocking backends: pid, application, transaction and query start, statement.
   */
  onLockWait?: (wait: LockWait) => void;
}

/** How a backfill requested through the handle (or a controller) runs; every field is optional. */
export interface BackfillOptions extends TransitionOptions {
  signal?: AbortSignal;
  onProgress?: (p: BackfillProgress) => void;
  batch?: Partial<Migration['batch']>;
  throttle?: Partial<Migration['throttle']>;
  /** How long a backfill reconnects and resumes after a lost connection before PF_CONNECTION_LOST (ms, default 60 000). */
  reconnectMs?: number;
  /**
   * `{ enabled: false }` skips the rebuild (`REINDEX INDEX CONCURRENTLY`) of the indexes the backfill bloated,
   * which runs by default once it completes, before the phase moves to backfilled.
   */
  reindex?: { enabled?: boolean };
}

/** A backfill run as the handle reports it: the runner's result and the phase afterwards. */
export type BackfillRun = BackfillResult & { phase: Phase };

/** What `verify()` stores with the migration: the verdict, the counts and the first differing keys. */
export interface StoredVerifyResult {
  readonly clean: boolean;
  readonly mismatches: number;
  readonly rowsChecked: number;
  readonly sampleKeys: unknown[][];
  readonly underivable?: number;
}

/** One migration as the state store records it (the store's own columns, named for TypeScript). */
export interface MigrationRecord {
  readonly id: string;
  readonly tableSchema: string;
  readonly tableName: string;
  readonly oldColumn: string | null;
  readonly newColumn: string;
  /** The declaration as last registered. */
  readonly definition: Record<string, unknown>;
  readonly phase: Phase;
  /** Bumped by every transition (compare-and-set). */
  readonly version: number;
  /** Expand created the new column (so rollback drops it); false when it was there before. */
  readonly createdNewColumn: boolean;
  readonly rowsEstimate: number | null;
  readonly rowsBackfilled: number;
  readonly backfillStartedAt: Date | null;
  readonly backfillCompletedAt: Date | null;
  readonly verifyResult: StoredVerifyResult | null;
  readonly verifiedAt: Date | null;
  /** The backfill's runtime knobs as set (see `setBackfillKnobs`); `{}` when none is set. */
  readonly backfillKnobs: Record<string, unknown>;
  /** When contract dropped the old column; null when it was not dropped. */
  readonly oldColumnDroppedAt: Date | null;
  /** The dropped old column's type, to type the old values a writer still supplies. */
  readonly oldColumnType: string | null;
  /** The last preflight over the existing rows; null before the first. */
  readonly preflight: Record<string, unknown> | null;
  /** When `readOld()` held every read on the old column; null when no hold stands. */
  readonly readsHeldAt: Date | null;
  /**
   * The primary's WAL position (`pg_lsn` text, e.g. `0/3000148`) when the migration became verified; a router reading
   * from a replica reads the new column once that replica has replayed past it. Null before verified.
   */
  readonly verifiedLsn: string | null;
  readonly updatedBy: string | null;
  readonly updatedAt: Date;
  readonly createdAt: Date;
}

/** One entry of a migration's event log: transitions, refusals, DDL, backfill, verify and repair notes. */
export interface MigrationEvent {
  readonly id: number;
  readonly migrationId: string;
  readonly at: Date;
  readonly kind: 'transition' | 'refused' | 'ddl' | 'backfill' | 'verify' | 'repair' | 'note';
  readonly action: string | null;
  readonly fromPhase: string | null;
  readonly toPhase: string | null;
  readonly actor: string | null;
  readonly reason: string | null;
  readonly detail: Record<string, unknown> | null;
}

/** A service instance as its router last reported: the phase it applies and what it reads and writes. */
export type { InstanceRow as InstanceStatus } from './store/rows.js';
import type { InstanceRow as InstanceStatus } from './store/rows.js';

export interface MigrationStatus {
  readonly id: string;
  readonly phase: Phase;
  readonly version: number;
  readonly record: MigrationRecord;
  readonly progress: BackfillProgress | null;
  readonly instances: InstanceStatus[];
  /** The last 50 events, oldest first. */
  readonly events: MigrationEvent[];
  /** Rows the backfill expression cannot derive: how many are recorded, and the first ones (key, old value, error). */
  readonly underivable: UnderivableSummary;
  /** The table against what the phase implies (see `MigrationHandle.drift()`): a controller refuses to advance while `blocking`. */
  readonly drift: DriftReport;
  /** Shadow reads (when declared): settings, counts summed and per instance, the mismatches and the guard's verdict. */
  readonly shadow: ShadowStatus | null;
}

/** Shadow reads as `status()` reports them (see `MigrationStatus.shadow`). */
export interface ShadowStatus extends ShadowSettings, ShadowSummary {
  /** The migration is `verified`: these are the counts the read-new guard sums now (else: the last `verified`'s). */
  readonly active: boolean;
  /** Compared rows that matched, over compared rows (0 when none was compared). */
  readonly matchRate: number;
  /** The guard's shadow condition is met (enough rows compared and matched). */
  readonly readNewAllowed: boolean;
  /** Why not, when not: the mismatch named, or too few rows compared. */
  readonly reason: string | null;
}

/** A migration as declared, or its handle. */
export type MigrationRef = { readonly id: string; readonly migration: Migration } | Migration | MigrationInput;

export type { VerifyResult };

/** A migration as the state store holds it (`Phaseflag.storedMigrations()`), declared or not. */
export interface StoredMigration {
  readonly record: MigrationRecord;
  /** Its sync trigger is on the table and enabled. */
  readonly syncTriggerInstalled: boolean;
}
