import type { Migration } from '@phaseflag/core';

export interface ColumnInfo {
  readonly name: string;
  /** format_type() of the column, e.g. "numeric(12,2)", "character varying(255)". */
  readonly type: string;
  readonly notNull: boolean;
}

/** A migration checked against the live catalog: every name resolved, every type normalized. */
export interface ResolvedMigration {
  readonly migration: Migration;
  /** The table's schema as the catalog has it (the connection's current schema when the declaration named none). */
  readonly schema: string;
  readonly table: string;
  readonly primaryKey: readonly ColumnInfo[];
  readonly columns: ReadonlyMap<string, ColumnInfo>;
  readonly oldColumn: ColumnInfo | null;
  /** The declared new type as format_type() spells it. */
  readonly newColumnType: string;
  /** The new column exists already (with that type): expand has run, or it was created by hand. */
  readonly newColumnExists: boolean;
  /** Columns the backfill expression reads (from pg_depend of a throw-away view). */
  readonly backfillInputs: readonly string[];
  /** Columns the reverse expression reads. */
  readonly reverseInputs: readonly string[];
  /** Estimated row count (pg_class.reltuples), for progress and ETA only. */
  readonly rowsEstimate: number;
}
