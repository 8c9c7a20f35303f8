import type { InstanceFact, Phase } from '@phaseflag/core';

/** The state store's rows as its tables hold them (snake_case columns); the public API sees them through records.ts. */

export interface MigrationRow {
  id: string;
  table_schema: string;
  table_name: string;
  old_column: string | null;
  new_column: string;
  definition: Record<string, unknown>;
  phase: Phase;
  version: number;
  created_new_column: boolean;
  rows_estimate: number | null;
  rows_backfilled: number;
  backfill_started_at: Date | null;
  backfill_completed_at: Date | null;
  verify_result: {
    clean: boolean;
    mismatches: number;
    rowsChecked: number;
    sampleKeys: unknown[][];
    underivable?: number;
  } | null;
  verified_at: Date | null;
  /** The backfill's runtime knobs (see backfill/knobs.ts); `{}` when none is set. */
  backfill_overrides: Record<string, unknown>;
  /** When contract dropped the old column (null: it was not dropped); recorded in the DROP's own transaction. */
  old_column_dropped_at: Date | null;
  /** The dropped old column's type (format_type), to type the old values a writer still supplies. */
  old_column_type: string | null;
  /** The last preflight over the existing rows (see preflight), null before the first. */
  preflight_result: Record<string, unknown> | null;
  /** When read-old sent every read back; reads stay on the old column until the read-new intent is given again. */
  reads_held_at: Date | null;
  /** The primary's WAL position (pg_lsn text, `0/1A2B3C4`) recorded when the migration became verified; null before. */
  verified_lsn: string | null;
  updated_by: string | null;
  updated_at: Date;
  created_at: Date;
}

export interface EventRow {
  id: number;
  migration_id: string;
  at: Date;
  kind: 'transition' | 'refused' | 'ddl' | 'backfill' | 'verify' | 'repair' | 'note';
  action: string | null;
  from_phase: string | null;
  to_phase: string | null;
  actor: string | null;
  reason: string | null;
  detail: Record<string, unknown> | null;
}

/** A service instance as its router last reported: the phase it applies and what it reads and writes. */
export interface InstanceRow extends InstanceFact {
  readonly readsNew: boolean;
  readonly host: string | null;
  readonly pid: number | null;
  readonly lastSeen: Date;
  /** Its heartbeat is younger than `instanceTtlMs`: the guards count it. */
  readonly live: boolean;
}
