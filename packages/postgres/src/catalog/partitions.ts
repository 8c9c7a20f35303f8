import type { Knex } from 'knex';

type Db = Knex | Knex.Transaction;

/** One partition of a partitioned table, at any depth (sub-partitions included). */
export interface PartitionInfo {
  readonly schema: string;
  readonly name: string;
  /** The table it is a partition of (the migration's table, or a sub-partitioned partition). */
  readonly parent: { readonly schema: string; readonly name: string };
  /** Itself partitioned (holds no rows; its index is built ON ONLY and its partitions' indexes are attached). */
  readonly partitioned: boolean;
  /** 1 for a direct partition of the migration's table, 2 for a partition of one of those, … */
  readonly level: number;
}

/**
 * The partitions of a partitioned table, all levels, parents before their partitions (pg_partition_tree, PG ≥ 12).
 * Read live by the steps at apply time, so a partition created since the plan is included.
 */
export async function readPartitions(db: Db, schema: string, table: string): Promise<PartitionInfo[]> {
  const rows = (
    await db.raw(
      `SELECT n.nspname AS schema, c.relname AS name, pn.nspname AS "parentSchema", p.relname AS "parentName",
              c.relkind = 'p' AS partitioned, t.level
         FROM pg_partition_tree((SELECT c0.oid FROM pg_class c0 JOIN pg_namespace n0 ON n0.oid = c0.relnamespace
                                  WHERE n0.nspname = ? AND c0.relname = ?)) AS t
         JOIN pg_class c ON c.oid = t.relid
         JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_class p ON p.oid = t.parentrelid
         JOIN pg_namespace pn ON pn.oid = p.relnamespace
        WHERE t.level > 0
        ORDER BY t.level, n.nspname, c.relname`,
      [schema, table],
    )
  ).rows as Array<{
    schema: string;
    name: string;
    parentSchema: string;
    parentName: string;
    partitioned: boolean;
    level: number;
  }>;
  return rows.map((r) => ({
    schema: r.schema,
    name: r.name,
    parent: { schema: r.parentSchema, name: r.parentName },
    partitioned: r.partitioned,
    level: r.level,
  }));
}

/** The partition key's columns (an expression in the key is shown as null). */
export async function readPartitionKey(db: Db, oid: number): Promise<(string | null)[]> {
  return (
    await db.raw<{ rows: { name: string | null }[] }>(
      `SELECT a.attname AS name
         FROM pg_partitioned_table pt
         JOIN LATERAL unnest(pt.partattrs) WITH ORDINALITY AS k(attnum, ord) ON true
         LEFT JOIN pg_attribute a ON a.attrelid = pt.partrelid AND a.attnum = k.attnum AND k.attnum <> 0
        WHERE pt.partrelid = ? ORDER BY k.ord`,
      [oid],
    )
  ).rows.map((r) => r.name);
}

/**
 * The index on `schema.table` attached to the partitioned index `parentIndex` (in `parentSchema`), if any: Postgres
 * builds and attaches one itself on a partition created (or attached) once the parent index exists.
 */
export async function readAttachedIndex(
  db: Db,
  parentSchema: string,
  parentIndex: string,
  schema: string,
  table: string,
): Promise<string | null> {
  const row = (
    await db.raw(
      `SELECT ci.relname AS name
         FROM pg_inherits h
         JOIN pg_class ci ON ci.oid = h.inhrelid
         JOIN pg_index i ON i.indexrelid = ci.oid
         JOIN pg_class t ON t.oid = i.indrelid
         JOIN pg_namespace tn ON tn.oid = t.relnamespace
         JOIN pg_class pi ON pi.oid = h.inhparent
         JOIN pg_namespace pn ON pn.oid = pi.relnamespace
        WHERE pn.nspname = ? AND pi.relname = ? AND tn.nspname = ? AND t.relname = ?`,
      [parentSchema, parentIndex, schema, table],
    )
  ).rows[0] as { name: string } | undefined;
  return row?.name ?? null;
}
