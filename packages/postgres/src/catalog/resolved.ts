import type { Migration } from '@phaseflag/core';
import type { OldColumnDefault } from './default.js';
import type { ResolvedReference } from './foreign-key.js';
import type { PartitionInfo } from './partitions.js';

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
  /**
   * The key rows are walked and found by (backfill, verify, preflight, bisection, the sync trigger's row key): the
   * primary key, or a unique key on NOT NULL columns when the table has none (see `rowKey`).
   */
  readonly primaryKey: readonly ColumnInfo[];
  /** Where `primaryKey` comes from: the primary key, or the unique constraint or index chosen in its place. */
  readonly rowKey?: { readonly kind: 'primary key' | 'unique constraint' | 'unique index'; readonly name: string };
  /** The table's columns (and a dropped old column as it was, see `oldColumnDropped`). */
  readonly columns: ReadonlyMap<string, ColumnInfo>;
  readonly oldColumn: ColumnInfo | null;
  /**
   * The migration is contracted and the state store records that contract dropped the old column: it is gone from
   * the table. `oldColumn` (and `columns`) then describe it as it was, so its values can still be typed; nothing
   * may read or write it.
   */
  readonly oldColumnDropped: boolean;
  /**
   * Set when the table is partitioned: its partitions at plan time, all levels, parents first (the steps read them
   * again at apply time). Undefined for an ordinary table.
   */
  readonly partitions?: readonly PartitionInfo[];
  /**
   * The new column's foreign key (newColumn.references), its table resolved (an unqualified one is looked up in
   * the migration table's schema); undefined when none.
   */
  readonly references?: ResolvedReference;
  /** The declared new type as format_type() spells it (schema-qualified outside pg_catalog). */
  readonly newColumnType: string;
  /** The new column exists already (with that type): expand has run, or it was created by hand. */
  readonly newColumnExists: boolean;
  /**
   * The declared constant default as a typed SQL literal rendered by Postgres itself (quote_literal of the value
   * cast to the type, e.g. `'12.50'::numeric(12,2)`); null when there is no default or it is NULL.
   */
  readonly newColumnDefaultSql: string | null;
  /**
   * The old column's DEFAULT and the new column's default carried over from it at contract (see
   * default.ts); null when the old column has none (or is gone, or there is no old column).
   */
  readonly oldColumnDefault?: OldColumnDefault | null;
  /** Columns the backfill expression reads (from pg_depend of a throw-away view). */
  readonly backfillInputs: readonly string[];
  /** Columns the reverse expression reads (by name; may include the new column). */
  readonly reverseInputs: readonly string[];
  /**
   * The schemas the expressions were resolved in (current_schemas(false) at plan time). Code that evaluates them
   * elsewhere (the sync trigger's function) pins this path, so a function name in an expression means the same
   * function for every writer, whatever the writer's own search_path.
   */
  readonly searchPath: readonly string[];
  /**
   * Objects outside the built-in catalog that the backfill and reverse expressions use ("function
   * public.to_cents(numeric)", "type public.mood"): these are the names a different search_path could resolve
   * differently. Empty when the expressions use built-ins only; undefined when not analysed (treated as unknown).
   */
  readonly expressionDependencies?: readonly string[];
  /** server_version_num, e.g. 150004. */
  readonly serverVersion: number;
  /** Estimated row count (pg_class.reltuples), for progress and ETA only. */
  readonly rowsEstimate: number;
}

/** The key a migration's rows are walked by, as the plan shows it. */
export interface RowKeyInfo {
  readonly kind: 'primary key' | 'unique constraint' | 'unique index';
  /** The constraint's (or bare index's) name; null when only the columns are known. */
  readonly name: string | null;
  readonly columns: readonly string[];
}

export function rowKeyOf(r: ResolvedMigration): RowKeyInfo {
  return {
    kind: r.rowKey?.kind ?? 'primary key',
    name: r.rowKey?.name ?? null,
    columns: r.primaryKey.map((c) => c.name),
  };
}

/** e.g. `unique constraint "orders_code_key" (code)`. */
export function describeRowKey(r: ResolvedMigration): string {
  const k = rowKeyOf(r);
  return `${k.kind}${k.name === null ? '' : ` "${k.name}"`} (${k.columns.join(', ')})`;
}
