import type { Phase } from '@phaseflag/core';
import type { DdlWatchStatus, RecordedDdl } from '../../store/ddl-watch.js';

export type { DdlWatchStatus, RecordedDdl };

/** What a drift finding is about. */
export type DriftObject =
  | 'table'
  | 'declaration'
  | 'new column'
  | 'index'
  | 'check'
  | 'foreign key'
  | 'sync trigger'
  | 'sync function'
  | 'old column'
  | 'state store';

/**
 * How to put it right: a phaseflag command where one does it, else SQL (every identifier quoted) with the lock it
 * takes in `note`; both may be given (the SQL, then the command that carries on).
 */
export interface DriftRepair {
  readonly command: string | null;
  readonly sql: string | null;
  readonly note: string | null;
}

/** One difference between the live catalog and what the migration's phase implies. */
export interface DriftFinding {
  readonly object: DriftObject;
  /** The object's name as the catalog has it (column, index, constraint, trigger, function, schema). */
  readonly name: string;
  readonly expected: string;
  readonly actual: string;
  readonly repair: DriftRepair;
  /**
   * The controller refuses to move the migration on while a blocking finding stands (PF_DRIFT). Not blocking: what
   * phaseflag's own next step puts right by itself (an outdated state store, which the next transition upgrades)
   * and what no later step depends on (a trigger left behind by a contract).
   */
  readonly blocking: boolean;
}

/** One migration's table against what its phase implies (`handle.drift()`). */
export interface DriftReport {
  readonly migrationId: string;
  /** The phase the state store records (`pending` when it does not know the migration). */
  readonly phase: Phase;
  /** `schema.table`. */
  readonly table: string;
  readonly findings: readonly DriftFinding[];
  /** DDL on the table that phaseflag did not run and nobody has acknowledged yet (`acknowledgeDdl()`, `drift --ack`). */
  readonly recordedDdl: readonly RecordedDdl[];
  /** Whether such DDL is being recorded as it happens, and why not. */
  readonly watch: DdlWatchStatus;
  /** A finding, or recorded DDL not acknowledged: `phaseflag drift` exits 1. */
  readonly drifted: boolean;
  /** A blocking finding: the controller refuses to advance (PF_DRIFT). */
  readonly blocking: boolean;
  readonly checkedAt: Date;
}

/** Every declared migration at once (`Phaseflag.drift()`). */
export interface StoreDriftReport {
  readonly stateSchema: string;
  /** The state store's version, and the one this phaseflag installs (0 when not installed). */
  readonly stateStore: { readonly version: number; readonly latest: number };
  readonly watch: DdlWatchStatus;
  readonly migrations: readonly DriftReport[];
  readonly drifted: boolean;
  readonly blocking: boolean;
}
