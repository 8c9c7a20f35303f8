import type { Knex } from 'knex';
import { regclassText } from '../../sql/text.js';

/** One index of a table (or of a leaf partition of it), with what the "did it grow?" rule needs. */
export interface IndexFacts {
  readonly schema: string;
  /** The table (the leaf partition, for a partitioned table) the index is on. */
  readonly table: string;
  readonly name: string;
  readonly method: string;
  readonly valid: boolean;
  /** Backs an exclusion constraint: REINDEX CONCURRENTLY refuses those. */
  readonly exclusion: boolean;
  readonly partial: boolean;
  readonly bytes: number;
  /** pg_class.reltuples of the index and of its table (-1: never vacuumed nor analyzed). */
  readonly indexTuples: number;
  readonly tableTuples: number;
  readonly fillfactor: number | null;
  /**
   * Bytes of the key (and INCLUDE) columns of one entry: fixed-width types by their length, variable-width ones by
   * pg_stats.avg_width of the column or of the index expression; null when one of them has no statistics.
   */
  readonly keyBytes: number | null;
}

/** An index left INVALID by a failed or cancelled REINDEX CONCURRENTLY (`<name>_ccnew`, `_ccnew1`, `_ccold`…). */
export interface Leftover {
  readonly schema: string;
  readonly table: string;
  readonly name: string;
}

/**
 * Every index of the table, or of its leaf partitions when it is partitioned (a partitioned index has no storage
 * of its own; its partitions' indexes do, and each is rebuilt on its own).
 *
 * With JIT off: the planner's guesses (pg_partition_tree's 1000 rows, times the pg_stats subqueries) put this
 * query above jit_above_cost, and compiling it took 1.0–1.6 s where it runs in milliseconds (EXPLAIN ANALYZE,
 * PostgreSQL 15): a fixed second at the end of every backfill.
 */
export async function listLeafIndexes(db: Knex, schema: string, table: string): Promise<IndexFacts[]> {
  const rows = await db.transaction(async (trx) => {
    await trx.raw("SELECT set_config('jit', 'off', true)");
    return readLeafIndexes(trx, schema, table);
  });
  return rows.map((x) => ({
    schema: x.schema as string,
    table: x.table as string,
    name: x.name as string,
    method: x.method as string,
    valid: x.valid as boolean,
    exclusion: x.exclusion as boolean,
    partial: x.partial as boolean,
    bytes: Number(x.bytes),
    indexTuples: Number(x.index_tuples),
    tableTuples: Number(x.table_tuples),
    fillfactor: x.fillfactor === null ? null : Number(x.fillfactor),
    keyBytes: x.key_bytes === null ? null : Number(x.key_bytes),
  }));
}

async function readLeafIndexes(db: Knex.Transaction, schema: string, table: string) {
  return (
    await db.raw(
      `SELECT n.nspname AS schema, ct.relname AS "table", ci.relname AS name, am.amname AS method,
              i.indisvalid AS valid, i.indisexclusion AS exclusion, i.indpred IS NOT NULL AS partial,
              pg_relation_size(i.indexrelid)::float8 AS bytes, ci.reltuples::float8 AS index_tuples,
              ct.reltuples::float8 AS table_tuples,
              (SELECT o.option_value::int FROM pg_options_to_table(ci.reloptions) o WHERE o.option_name = 'fillfactor') AS fillfactor,
              (SELECT CASE WHEN bool_and(w.width IS NOT NULL) THEN sum(w.width)::float8 END
                 FROM pg_attribute a
                 CROSS JOIN LATERAL (
                   SELECT CASE WHEN a.attlen > 0 THEN a.attlen::float8
                     ELSE (SELECT s.avg_width::float8 FROM pg_stats s
                            WHERE s.schemaname = n.nspname
                              AND ((i.indkey[a.attnum - 1] <> 0 AND s.tablename = ct.relname
                                    AND s.attname = (SELECT t.attname FROM pg_attribute t
                                                     WHERE t.attrelid = i.indrelid AND t.attnum = i.indkey[a.attnum - 1]))
                                OR (i.indkey[a.attnum - 1] = 0 AND s.tablename = ci.relname AND s.attname = a.attname))
                            LIMIT 1)
                   END AS width) w
                WHERE a.attrelid = i.indexrelid AND a.attnum > 0) AS key_bytes
         FROM (SELECT p.relid FROM pg_partition_tree(?::regclass) p WHERE p.isleaf
               UNION SELECT c.oid FROM pg_class c WHERE c.oid = ?::regclass AND c.relkind <> 'p') leaf
         JOIN pg_index i ON i.indrelid = leaf.relid
         JOIN pg_class ci ON ci.oid = i.indexrelid
         JOIN pg_class ct ON ct.oid = i.indrelid
         JOIN pg_namespace n ON n.oid = ci.relnamespace
         JOIN pg_am am ON am.oid = ci.relam
        ORDER BY ct.relname, ci.relname`,
      [regclassText(schema, table), regclassText(schema, table)],
    )
  ).rows as Record<string, unknown>[];
}

/** The size of one index now, or null when it is gone. */
export async function indexBytes(db: Knex, schema: string, name: string): Promise<number | null> {
  const row = (await db.raw('SELECT pg_relation_size(to_regclass(?))::float8 AS bytes', [regclassText(schema, name)]))
    .rows[0] as { bytes: number | null };
  return row.bytes === null ? null : Number(row.bytes);
}

const LEFTOVER = /^(.*)_cc(?:new|old)\d*$/;

/**
 * The invalid leftovers of a REINDEX CONCURRENTLY of `of` on its table: Postgres names the new copy
 * `<name>_ccnew` (`_ccnew1`, … when taken; the name part cut to fit 63 bytes) and, once swapped, the old one
 * `<name>_ccold`. Either stays INVALID when the command fails or is cancelled; an invalid index answers no query
 * but, once ready, every write still maintains it.
 */
export function leftoversOf(of: IndexFacts, all: readonly IndexFacts[]): Leftover[] {
  return all
    .filter((x) => !x.valid && x.table === of.table && x.schema === of.schema && x.name !== of.name)
    .filter((x) => {
      const m = LEFTOVER.exec(x.name);
      return m !== null && m[1]!.length > 0 && of.name.startsWith(m[1]!);
    })
    .map((x) => ({ schema: x.schema, table: x.table, name: x.name }));
}

const PAGE = 8192;
/** A btree page's room for entries: the page less its header (24 bytes) and btree's special space (16). */
const BTREE_ROOM = PAGE - 24 - 16;
/** Leaf pages are packed to the index's fillfactor (90 by default), inner pages to 70 (nbtree.h). */
const LEAF_FILLFACTOR = 90;
const INNER_FILLFACTOR = 70;

/**
 * The size a fresh build of a btree index would have (REINDEX, or CREATE INDEX on the same rows): entries of
 * MAXALIGN(8-byte header + key bytes) plus a 4-byte line pointer, leaf pages filled to the fillfactor, the levels
 * above at 70%, and the metapage. Null when it cannot be told: another access method, no statistics for a
 * variable-width key, a table never vacuumed nor analyzed. It ignores deduplication (a fresh non-unique index with
 * many equal keys is smaller), so such an index is estimated high and rebuilt only once past that.
 */
export function freshBtreeBytes(x: IndexFacts): number | null {
  if (x.method !== 'btree' || x.keyBytes === null) return null;
  const entries = x.partial ? x.indexTuples : x.tableTuples;
  if (!(entries >= 0)) return null;
  const entry = Math.ceil((8 + x.keyBytes) / 8) * 8 + 4;
  const perLeaf = Math.max(2, Math.floor((BTREE_ROOM * (x.fillfactor ?? LEAF_FILLFACTOR)) / 100 / entry));
  const perInner = Math.max(2, Math.floor((BTREE_ROOM * INNER_FILLFACTOR) / 100 / entry));
  let pages = 1; // the metapage
  let level = Math.max(1, Math.ceil(entries / perLeaf));
  pages += level;
  while (level > 1) {
    level = Math.ceil(level / perInner);
    pages += level;
  }
  return pages * PAGE;
}

/** An index is rebuilt when it is this much larger than a fresh build would be… */
export const GROWN_FACTOR = 1.15;
/** …and by at least this many bytes (a small index is not worth a rebuild). */
export const GROWN_MIN_BYTES = 16 * PAGE;

/**
 * Whether an index should be rebuilt: larger than a fresh build by GROWN_FACTOR and GROWN_MIN_BYTES, or of a kind
 * whose fresh size cannot be estimated (GIN, GiST, a key without statistics…), which is rebuilt when it is not
 * tiny: a rebuild is never wrong, only time spent. Invalid indexes (someone else's failed build) and exclusion
 * constraints' indexes (REINDEX CONCURRENTLY refuses them) are left alone.
 */
export function grew(x: IndexFacts): { grew: boolean; freshBytes: number | null } {
  if (!x.valid || x.exclusion) return { grew: false, freshBytes: null };
  const fresh = freshBtreeBytes(x);
  if (fresh === null) return { grew: x.bytes >= GROWN_MIN_BYTES, freshBytes: null };
  return { grew: x.bytes > fresh * GROWN_FACTOR && x.bytes - fresh >= GROWN_MIN_BYTES, freshBytes: fresh };
}
