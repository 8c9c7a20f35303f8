import type { Knex } from 'knex';

/** One table's size and columns, as `phaseflag lint` takes them for its catalog context. */
export interface TableDescription {
  schema: string;
  name: string;
  /** pg_class.reltuples (summed over the leaves of a partitioned table); -1 when never vacuumed or analyzed. */
  rowsEstimate: number;
  /** pg_total_relation_size: heap, TOAST and indexes (over every partition of a partitioned table). */
  totalBytes: number;
  columns: Array<{ name: string; type: string; notNull: boolean }>;
  /**
   * Its CHECK constraints: the name, the definition as pg_get_constraintdef writes it, whether it is validated
   * (false while NOT VALID), and, when the check is exactly `CHECK (col IS NOT NULL)`, that column.
   */
  checks: Array<{ name: string; definition: string; validated: boolean; notNullColumn?: string }>;
}

export interface CatalogDescription {
  /** server_version_num, e.g. 150020. */
  serverVersionNum: number;
  /** The connection's search_path as Postgres resolves it (`current_schemas(false)`): where an unqualified name is found. */
  searchPath: string[];
  tables: TableDescription[];
}

/**
 * Sizes, row estimates, column types and CHECK constraints of the database's own tables (every schema but the system ones), or of
 * the tables with these names: the catalog context `@phaseflag/lint` judges a blocking statement by. Read-only,
 * catalog queries only (no table is scanned).
 */
export async function describeTables(knex: Knex, names?: readonly string[]): Promise<CatalogDescription> {
  const version = (
    await knex.raw(`SELECT current_setting('server_version_num')::int AS v, current_schemas(false)::text[] AS path`)
  ).rows[0] as { v: number; path: string[] };
  const filter = names && names.length > 0;
  const rows = (
    await knex.raw(
      `SELECT n.nspname AS schema, c.relname AS name,
              CASE WHEN c.relkind = 'p'
                   THEN (SELECT coalesce(sum(greatest(l.reltuples, 0)), -1) FROM pg_partition_tree(c.oid) t
                         JOIN pg_class l ON l.oid = t.relid WHERE t.isleaf)
                   ELSE c.reltuples END AS rows,
              CASE WHEN c.relkind = 'p'
                   THEN (SELECT coalesce(sum(pg_total_relation_size(t.relid)), 0) FROM pg_partition_tree(c.oid) t WHERE t.isleaf)
                   ELSE pg_total_relation_size(c.oid) END AS bytes,
              coalesce((SELECT json_agg(json_build_object('name', a.attname, 'type', format_type(a.atttypid, a.atttypmod),
                                                          'notNull', a.attnotnull) ORDER BY a.attnum)
                        FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '[]') AS columns,
              coalesce((SELECT json_agg(json_strip_nulls(json_build_object(
                                  'name', k.conname, 'definition', pg_get_constraintdef(k.oid), 'validated', k.convalidated,
                                  'notNullColumn', (SELECT a.attname FROM pg_attribute a
                                                     WHERE a.attrelid = c.oid AND cardinality(k.conkey) = 1 AND a.attnum = k.conkey[1]
                                                       AND regexp_replace(pg_get_constraintdef(k.oid), ' NOT VALID$', '')
                                                           = 'CHECK ((' || quote_ident(a.attname) || ' IS NOT NULL))')))
                                ORDER BY k.conname)
                        FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'c'), '[]') AS checks
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
          AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'
          ${filter ? 'AND c.relname = ANY(?::text[])' : ''}
        ORDER BY 1, 2`,
      filter ? [[...names]] : [],
    )
  ).rows as Array<{
    schema: string;
    name: string;
    rows: string | number;
    bytes: string | number;
    columns: TableDescription['columns'];
    checks: TableDescription['checks'];
  }>;
  return {
    serverVersionNum: Number(version.v),
    searchPath: version.path,
    tables: rows.map((r) => ({
      schema: r.schema,
      name: r.name,
      rowsEstimate: Number(r.rows),
      totalBytes: Number(r.bytes),
      columns: r.columns,
      checks: r.checks,
    })),
  };
}
