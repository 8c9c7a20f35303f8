import { ValidationError } from '@phaseflag/core';
import type { Knex } from 'knex';
import type { ExecutorContext } from '../../context.js';
import type { ResolvedMigration } from '../../catalog/resolved.js';
import { advisoryKey } from '../../driver/advisory.js';
import { regclassText } from '../../sql/text.js';
import { isSingleIntegerKey, keyParam, keySql, qualifiedTable, TABLE_ALIAS } from './keys.js';
import { dropStaleRanges, dualWriteEpoch, readRanges, resetRanges } from './state.js';
import type { BackfillPlanInfo } from './types.js';

/** Rows to sample per range when boundaries are chosen from a sample; a few thousand per bucket balance well enough. */
const SAMPLE_ROWS_PER_RANGE = 10_000;
/** Below this estimate the boundaries come from the whole pk index, which is exact and still quick. */
const FULL_SCAN_LIMIT = 200_000;
/** Bytes above which a table whose row count Postgres has never estimated is sampled rather than read whole. */
const UNKNOWN_SIZE_LIMIT = 256 * 1024 * 1024;

interface NewRange {
  lower: string | null;
  upper: string;
  done: boolean;
}

/**
 * Splits the rows that exist now into disjoint key ranges, one per worker, and records them. Idempotent: when
 * ranges exist they are kept, which is how a backfill resumes after a crash, a pause or a deploy.
 *
 * The upper bound is the highest key at this moment. It must be taken once every writer dual-writes (the engine's
 * backfill guard): rows inserted afterwards are written right by dual-write, so the backfill never chases a
 * growing table and always ends. The ranges record which dual-write that was (dual_write_version), and ranges of an
 * earlier one are never reused.
 */
export async function prepareBackfill(
  ctx: ExecutorContext,
  r: ResolvedMigration,
  opts: { workers?: number } = {},
): Promise<BackfillPlanInfo> {
  const id = r.migration.id;
  const workers = opts.workers ?? r.migration.batch.workers;
  if (!Number.isInteger(workers) || workers < 1 || workers > 32) {
    throw new ValidationError('PF_INVALID_OPTIONS', `Invalid backfill worker count ${JSON.stringify(workers)}.`, {
      value: workers,
      migrationId: id,
      hint: 'Use an integer from 1 to 32 (each worker holds one connection).',
    });
  }
  const s = ctx.stateSchema;
  return ctx.knex.transaction(async (trx) => {
    // Two preparers racing would both see no ranges; the transaction-scoped lock makes the second one find them.
    await trx.raw('SELECT pg_advisory_xact_lock(?::bigint)', [advisoryKey('backfill-prepare', id)]);
    // Ranges from an earlier dual-write (prepared, then a crash before backfilling, then stop-dual-write and rows
    // inserted with nobody writing the new column) stop below those rows: they are planned again.
    const epoch = await dualWriteEpoch(trx, s, id);
    const stale = await dropStaleRanges(trx, s, id, epoch);
    if (stale > 0) {
      ctx.logger.info(
        `backfill of ${id}: ${stale} range(s) bounded in an earlier dual-write dropped; planning them again`,
        { migrationId: id, dualWriteVersion: epoch },
      );
    }
    const existing = await readRanges(trx, s, id);
    if (existing.length > 0) {
      const estimate = (await trx.raw('SELECT rows_estimate FROM ??.migrations WHERE id = ?', [s, id])).rows[0]
        ?.rows_estimate;
      const last = existing[existing.length - 1]!;
      return {
        migrationId: id,
        created: false,
        split: 'existing',
        upperKey: last.upperKey.length ? last.upperKey : null,
        rowsEstimate: Number(estimate ?? r.rowsEstimate),
        ranges: existing,
      };
    }
    const { split, ranges, estimate } = await planRanges(trx, r, workers);
    for (const [worker, range] of ranges.entries()) {
      await trx.raw(
        `INSERT INTO ??.backfill_ranges (migration_id, worker, lower_key, upper_key, checkpoint, done, dual_write_version)
         VALUES (?, ?, ?::jsonb, ?::jsonb, NULL, ?, ?)`,
        [s, id, worker, range.lower, range.upper, range.done, epoch],
      );
    }
    await trx.raw('UPDATE ??.migrations SET rows_estimate = ? WHERE id = ?', [s, Math.round(estimate), id]);
    const stored = await readRanges(trx, s, id);
    const last = stored[stored.length - 1]!;
    return {
      migrationId: id,
      created: true,
      split,
      upperKey: last.upperKey.length ? last.upperKey : null,
      rowsEstimate: Math.round(estimate),
      ranges: stored,
    };
  });
}

/** Deletes a migration's ranges and zeroes its backfill counters (rollback, or starting a backfill over). */
export async function resetBackfill(ctx: ExecutorContext, migrationId: string): Promise<{ rangesDeleted: number }> {
  return ctx.knex.transaction(async (trx) => ({ rangesDeleted: await resetRanges(trx, ctx.stateSchema, migrationId) }));
}

async function planRanges(
  trx: Knex.Transaction,
  r: ResolvedMigration,
  workers: number,
): Promise<{ split: BackfillPlanInfo['split']; ranges: NewRange[]; estimate: number }> {
  const table = qualifiedTable(r);
  const key = keySql(r.primaryKey);
  // Both ends come from the pk index (an index-only probe each), never from a scan.
  const ends = (
    await trx.raw(
      `SELECT (SELECT ${key.json}::text FROM ${table} AS ${TABLE_ALIAS} ORDER BY ${key.list} LIMIT 1) AS min_key,
            (SELECT ${key.json}::text FROM ${table} AS ${TABLE_ALIAS} ORDER BY ${key.descending} LIMIT 1) AS max_key,
            greatest(c.reltuples, 0)::float8 AS reltuples, pg_relation_size(c.oid)::float8 AS bytes
       FROM pg_class c WHERE c.oid = ?::regclass`,
      [regclassText(r.schema, r.table)],
    )
  ).rows[0] as { min_key: string | null; max_key: string | null; reltuples: number; bytes: number };
  if (ends.max_key === null || ends.min_key === null) {
    return { split: 'empty', ranges: [{ lower: null, upper: '[]', done: true }], estimate: 0 };
  }
  const maxKey = ends.max_key;
  if (isSingleIntegerKey(r.primaryKey)) {
    const min = BigInt((JSON.parse(ends.min_key) as [number | string])[0].toString());
    const max = BigInt(maxKeyScalar(maxKey));
    const span = max - min + 1n;
    const estimate = ends.reltuples > 0 ? ends.reltuples : Number(span);
    if (workers === 1) return { split: 'single', ranges: [{ lower: null, upper: maxKey, done: false }], estimate };
    const bounds: bigint[] = [];
    for (let i = 1; i < workers; i++) {
      const b = min - 1n + (span * BigInt(i)) / BigInt(workers);
      if (b >= min && b < max && b !== bounds[bounds.length - 1]) bounds.push(b);
    }
    return {
      split: 'arithmetic',
      ranges: chain(
        bounds.map((b) => `[${b}]`),
        maxKey,
      ),
      estimate,
    };
  }
  const sampled = await sampleBoundaries(trx, r, workers, maxKey, ends.reltuples, ends.bytes);
  const estimate = ends.reltuples > 0 ? ends.reltuples : sampled.estimate;
  if (workers === 1) return { split: 'single', ranges: [{ lower: null, upper: maxKey, done: false }], estimate };
  return { split: 'sample', ranges: chain(sampled.bounds, maxKey), estimate };
}

function maxKeyScalar(keyText: string): string {
  // Parse the digits ourselves: JSON.parse would round a bigint above 2^53.
  const m = /^\[\s*(-?\d+)\s*\]$/.exec(keyText);
  if (!m) throw new Error(`unexpected integer key ${keyText}`);
  return m[1]!;
}

/** (null, b1], (b1, b2], …, (bn, max]: disjoint, with nothing between neighbours. */
function chain(bounds: readonly string[], maxKey: string): NewRange[] {
  const uppers = [...bounds, maxKey];
  return uppers.map((upper, i) => ({ lower: i === 0 ? null : uppers[i - 1]!, upper, done: false }));
}

/**
 * Boundaries for keys that cannot be split arithmetically (text, uuid, composite): the last key of each of N
 * equal buckets of the ordered keys, from the whole table when it is small and from a TABLESAMPLE of pages when
 * it is large. Only N-1 keys come back to us; the sorting happens in Postgres (spilling to disk if it must).
 * Balance depends on the sample; correctness does not, since any increasing boundaries cover the key space.
 */
async function sampleBoundaries(
  trx: Knex.Transaction,
  r: ResolvedMigration,
  workers: number,
  maxKey: string,
  reltuples: number,
  bytes: number,
): Promise<{ bounds: string[]; estimate: number }> {
  const table = qualifiedTable(r);
  const key = keySql(r.primaryKey);
  const known = reltuples > 0 ? reltuples : bytes > UNKNOWN_SIZE_LIMIT ? (bytes / 8192) * 50 : 0;
  const want = SAMPLE_ROWS_PER_RANGE * workers;
  const percent = known > Math.max(FULL_SCAN_LIMIT, 2 * want) ? Math.max(0.001, (100 * want) / known) : null;
  if (workers === 1 && percent !== null) return { bounds: [], estimate: known };
  const aliases = r.primaryKey.map((_, i) => `__pf_key_${i}`);
  const maxRow = keyParam(r.primaryKey, '?');
  const rows = (
    await trx.raw(
      `SELECT bucket, n, key_text FROM (
       SELECT DISTINCT ON (bucket) bucket, n, jsonb_build_array(${aliases.join(', ')})::text AS key_text
         FROM (SELECT ${key.qualified.map((c, i) => `${c} AS ${aliases[i]}`).join(', ')},
                      ntile(?) OVER (ORDER BY ${key.list}) AS bucket, count(*) OVER () AS n
                 FROM ${table} AS ${TABLE_ALIAS} ${percent === null ? '' : 'TABLESAMPLE SYSTEM (?)'}
                WHERE ${key.row} <= ${maxRow}) w
        ORDER BY bucket, ${aliases.map((a) => `${a} DESC`).join(', ')}) b
     ORDER BY bucket`,
      [workers, ...(percent === null ? [] : [percent]), ...r.primaryKey.map(() => maxKey)],
    )
  ).rows as { bucket: number; n: string; key_text: string }[];
  const n = rows.length ? Number(rows[0]!.n) : 0;
  const estimate = percent === null ? n : known;
  // The last bucket ends at the sample's highest key; the real upper bound (maxKey) replaces it.
  const bounds = rows.filter((row) => row.bucket < workers && row.key_text !== maxKey).map((row) => row.key_text);
  return { bounds, estimate };
}
