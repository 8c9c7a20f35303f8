import type { Migration } from '@phaseflag/core';

export interface ColumnInfo {
  readonly name: string;
  /**
   * format_type() of the column, e.g. "numeric(12,2)", "character varying(255)"; a type outside pg_catalog is
   * schema-qualified ("public.mood"), so the text means the same type under any search_path.
   */
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
  /** The declared new type as format_type() spells it (schema-qualified outside pg_catalog). */
  readonly newColumnType: string;
  /** The new column exists already (with that type): expand has run, or it was created by hand. */
  readonly newColumnExists: boolean;
  /**
   * The declared constant default as a typed SQL literal rendered by Postgres itself (quote_literal of the value
   * cast to the type, e.g. `'12.50'::numeric(12,2)`); null when there is no default or it is NULL.
   */
  readonly newColumnDefaultSql: string | null;
  /** Columns the backfill expression reads (from pg_depend of a throw-away view). */
  readonly backfillInputs: readonly string[];
  /** Columns the reverse expression reads (by name; may include the new column). */
  readonly reverseInputs: readonly string[];
  /**
   * The search_path the expressions were resolved under. Code that evaluates them elsewhere (the sync trigger's
   * function) pins it, so a function name in an expression means the same function for every writer.
   */
  readonly searchPath: string;
  /** server_version_num, e.g. 150004. */
  readonly serverVersion: number;
  /** Estimated row count (pg_class.reltuples), for progress and ETA only. */
  readonly rowsEstimate: number;
}
