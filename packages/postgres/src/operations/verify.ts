import { ATTR, SPAN, ValidationError, quoteIdent } from '@phaseflag/core';
import type { ExecutorContext } from '../context.js';
import { describeRowKey, type ResolvedMigration } from '../catalog/resolved.js';
import { waitsOnce, type PlannedStatement } from './planned-statement.js';
import { onTable, tableSql } from './steps/step.js';
import { displayKeySql, keyParam, keySql, qualifiedTable, TABLE_ALIAS } from './backfill/keys.js';
import { Session } from '../driver/session.js';
import { newValueSql } from './backfill/statements.js';
import { orphanSql } from './steps/add-foreign-key.js';
import { withSpan } from '../telemetry/with-span.js';
import {
  evaluateKeySql,
  rowAfterSql,
  rowAfterReader,
  walkBisecting,
  type BisectWalk,
  type FailedRow,
} from './underivable/bisect.js';
import {
  clearResolvedUnderivable,
  recordUnderivable,
  underivableSummary,
  type UnderivableSummary,
} from './underivable/store.js';

export interface VerifyOptions {
  /** Rows per statement (default 10 000). */
  batchSize?: number;
  /** Mismatching keys to report (default 100); counting goes on over the whole table. */
  maxSampleKeys?: number;
  signal?: AbortSignal;
}

/**
 * What a verify walk compared:
 * - 'expression': every row's new column equals the backfill expression (after the cast to the new type); with a
 *   NOT NULL declaration, a NULL new column also counts as a mismatch. Clean proves that reads can move to the new
 *   column: it holds what the old one would give, for every row that existed during the walk.
 * - 'not-null': a brand-new column with no expression whose declaration wants NOT NULL: counts rows where it is
 *   NULL. Clean proves only that SET NOT NULL will succeed, nothing about the values.
 * - 'none': a brand-new nullable column with no expression: there is nothing to compare; the walk only counts rows.
 */
export type VerifyCheck = 'expression' | 'not-null' | 'none';

export interface VerifyResult {
  /** The whole table was walked and nothing mismatched. */
  readonly clean: boolean;
  readonly rowsChecked: number;
  readonly mismatches: number;
  /** Rows whose new column is NULL although the declaration wants NOT NULL (included in mismatches). */
  readonly nulls: number;
  /** Up to maxSampleKeys primary keys of mismatching rows, in key order (integers beyond 2^53 as strings). */
  readonly sampleKeys: unknown[][];
  readonly durationMs: number;
  readonly check: VerifyCheck;
  /** False when the walk was aborted before the end of the table (such a result is never clean). */
  readonly complete: boolean;
  /**
   * Rows the backfill expression cannot derive (an error on the row's value), as recorded after this walk: the
   * ones the walk failed on (counted in mismatches too, recorded with source 'verify'), and those the trigger,
   * preflight or backfill recorded that still do not derive. Any of them makes the result not clean.
   */
  readonly underivable: UnderivableSummary;
}

const VERIFY_ATTR = {
  rowsChecked: 'phaseflag.verify.rows',
  check: 'phaseflag.verify.check',
  complete: 'phaseflag.verify.complete',
  underivable: 'phaseflag.verify.underivable',
} as const;

/**
 * Walks the whole table by primary key (keyset, one short READ ONLY transaction of one statement per batch, so
 * no snapshot is held open and vacuum is not held back) and counts rows whose new column differs from the backfill expression. Rows
 * written during the walk are compared as each batch's statement sees them; a row that a dual-writing
 * application changes stays consistent within that statement. The engine records the result and moves the phase.
 */
export async function verifyMigration(
  ctx: ExecutorContext,
  r: ResolvedMigration,
  opts: VerifyOptions = {},
): Promise<VerifyResult> {
  const id = r.migration.id;
  const batchSize = opts.batchSize ?? 10_000;
  const maxSampleKeys = opts.maxSampleKeys ?? 100;
  if (!Number.isInteger(batchSize) || batchSize < 1 || !Number.isInteger(maxSampleKeys) || maxSampleKeys < 0) {
    throw new ValidationError(
      'PF_INVALID_OPTIONS',
      `Invalid verify options ${JSON.stringify({ batchSize, maxSampleKeys })}.`,
      {
        value: opts,
        migrationId: id,
        hint: 'batchSize is a positive integer, maxSampleKeys a non-negative one.',
      },
    );
  }
  const { check, first, next } = buildVerifyStatements(r);
  const rowAfter = rowAfterSql(r, false);
  const evaluateKey = r.migration.backfill === null ? null : evaluateKeySql(r, r.migration.backfill);
  const started = ctx.clock.now();
  const attributes = {
    [ATTR.migrationId]: id,
    [ATTR.table]: `${r.schema}.${r.table}`,
    [VERIFY_ATTR.check]: check,
    [ATTR.dbSystem]: 'postgresql',
  };
  // Not made the active span: its batches are parented on it explicitly.
  return withSpan(
    ctx.tracer,
    SPAN.verify,
    { attributes },
    async (span, parent) => {
      const session = await Session.open(ctx.knex);
      let rowsChecked = 0;
      let mismatches = 0;
      let nulls = 0;
      const sampleKeys: unknown[][] = [];
      const failed: FailedRow[] = [];
      let cursor: string | null = null;
      let complete = false;
      const readOnly = { readOnly: true, searchPath: r.searchPath };
      // A batch that fails on a row's value is halved down to that row (read-only statements): the row counts as a
      // mismatch, is recorded, and the walk goes on after it instead of stopping at the first bad row.
      const walk: BisectWalk = {
        chunk: async (after, limit) => {
          const wanted = Math.max(0, maxSampleKeys - sampleKeys.length);
          const row: VerifyRow = (await session.transaction(
            () =>
              after === null
                ? session.one<VerifyRow>(first, [limit, wanted])
                : session.one<VerifyRow>(next, [after, limit, wanted]),
            readOnly,
          ))!;
          rowsChecked += row.scanned;
          mismatches += row.mismatches;
          nulls += row.nulls;
          sampleKeys.push(...(row.sample ?? []));
          return { scanned: row.scanned, lastKey: row.last_key };
        },
        rowAfter: rowAfterReader(session, rowAfter, readOnly),
        evaluateRow: async (keyText) => {
          if (evaluateKey !== null) await session.transaction(() => session.query(evaluateKey, [keyText]), readOnly);
        },
        onFailure: (row) => {
          failed.push(row);
          rowsChecked++;
          mismatches++;
          if (sampleKeys.length < maxSampleKeys) sampleKeys.push(row.key);
        },
      };
      try {
        while (!opts.signal?.aborted) {
          const lastBatch = await withSpan(
            ctx.tracer,
            SPAN.verifyBatch,
            {
              attributes: { [ATTR.migrationId]: id, [ATTR.batchSize]: batchSize, [ATTR.keyFrom]: cursor ?? '' },
            },
            async (batchSpan) => {
              const before = { mismatches, failed: failed.length };
              const chunk = await walkBisecting(walk, cursor, batchSize);
              batchSpan.setAttributes({
                [ATTR.rows]: chunk.scanned,
                [ATTR.mismatches]: mismatches - before.mismatches,
                [ATTR.keyTo]: chunk.lastKey ?? cursor ?? '',
              });
              if (failed.length > before.failed)
                batchSpan.setAttribute(VERIFY_ATTR.underivable, failed.length - before.failed);
              if (chunk.lastKey !== null) cursor = chunk.lastKey;
              return chunk.scanned < batchSize;
            },
            { parent, activate: false },
          );
          if (lastBatch) {
            complete = true;
            break;
          }
        }
      } finally {
        await session.release();
      }
      await recordUnderivable(ctx, id, failed, 'verify');
      await clearResolvedUnderivable(ctx, r);
      const underivable = await underivableSummary(ctx, id);
      const result: VerifyResult = {
        clean: complete && mismatches === 0 && underivable.count === 0,
        rowsChecked,
        mismatches,
        nulls,
        sampleKeys,
        durationMs: ctx.clock.now() - started,
        check,
        complete,
        underivable,
      };
      span.setAttributes({
        [ATTR.mismatches]: mismatches,
        [VERIFY_ATTR.rowsChecked]: rowsChecked,
        [VERIFY_ATTR.complete]: complete,
        [VERIFY_ATTR.underivable]: underivable.count,
      });
      const dirty = `${mismatches} mismatch(es)${underivable.count > 0 ? `, ${underivable.count} underivable row(s)` : ''}${complete ? '' : ', aborted'}`;
      ctx.logger.info(`verify of ${id}: ${result.clean ? 'clean' : dirty}`, {
        migrationId: id,
        rowsChecked,
        mismatches,
        underivable: underivable.count,
      });
      return result;
    },
    { activate: false },
  );
}

interface VerifyRow {
  scanned: number;
  mismatches: number;
  nulls: number;
  last_key: string | null;
  sample: unknown[][] | null;
}

/** first: $1 batch size, $2 sample keys wanted; next: $1 cursor key, $2 batch size, $3 sample keys wanted. */
function buildVerifyStatements(r: ResolvedMigration): { check: VerifyCheck; first: string; next: string } {
  const table = qualifiedTable(r);
  const key = keySql(r.primaryKey);
  const column = `${TABLE_ALIAS}.${quoteIdent(r.migration.newColumn.name)}`;
  const wantsNotNull = !r.migration.newColumn.nullable;
  const expression = r.migration.backfill;
  const check: VerifyCheck = expression !== null ? 'expression' : wantsNotNull ? 'not-null' : 'none';
  const isNull = wantsNotNull ? `${column} IS NULL` : 'false';
  // A value without a parent row counts as a mismatch too when the new column has a foreign key.
  const orphan = r.references ? ` OR ${orphanSql(r, r.references)}` : '';
  const bad =
    expression !== null
      ? `(${column} IS DISTINCT FROM ${newValueSql(r, expression)}${wantsNotNull ? ` OR ${column} IS NULL` : ''}${orphan})`
      : `(${isNull}${orphan})`;
  const aliases = r.primaryKey.map((_, i) => `__pf_key_${i}`);
  const select = key.qualified.map((c, i) => `${c} AS ${aliases[i]}`).join(', ');
  const aliasList = aliases.join(', ');
  // The rows are chosen (and sorted) in a subquery that computes no expression: the expression runs on the
  // batch's rows only, so an error on a row's value always belongs to the batch (bisect finds it there).
  const statement = (after: string | null, limit: string, wanted: string) => `
    WITH chunk AS (
      SELECT ${select}, ${bad} AS __pf_bad, ${isNull} AS __pf_null
        FROM (SELECT * FROM ${table} AS ${TABLE_ALIAS}
               ${after === null ? '' : `WHERE ${key.row} > ${keyParam(r.primaryKey, after)}`}
               ORDER BY ${key.list} LIMIT ${limit}) AS ${TABLE_ALIAS}
    ), last AS (SELECT * FROM chunk ORDER BY ${aliases.map((a) => `${a} DESC`).join(', ')} LIMIT 1)
    SELECT (SELECT count(*) FROM chunk)::int AS scanned,
           (SELECT count(*) FROM chunk WHERE __pf_bad)::int AS mismatches,
           (SELECT count(*) FROM chunk WHERE __pf_null)::int AS nulls,
           (SELECT jsonb_build_array(${aliasList})::text FROM last) AS last_key,
           (SELECT jsonb_agg(k ORDER BY ${aliasList}) FROM (
              SELECT ${aliasList}, ${displayKeySql(`jsonb_build_array(${aliasList})`)} AS k
                FROM chunk WHERE __pf_bad ORDER BY ${aliasList} LIMIT ${wanted}) s) AS sample`;
  return { check, first: statement(null, '$1', '$2'), next: statement('$1', '$2', '$3') };
}

/** The verify walk, as one statement: what it counts per key range. */
export function verifyWalk(r: ResolvedMigration): PlannedStatement {
  const m = r.migration;
  const col = `t.${quoteIdent(m.newColumn.name)}`;
  const orphan = r.references ? ` OR ${orphanSql(r, r.references)}` : '';
  const bad =
    m.backfill !== null
      ? `${col} IS DISTINCT FROM ${newValueSql(r, m.backfill)}${orphan}`
      : m.newColumn.nullable
        ? `false${orphan}`
        : `${col} IS NULL${orphan}`;
  return {
    ...onTable(
      r,
      'verify',
      'ACCESS SHARE',
      `SELECT count(*) FILTER (WHERE ${bad}) AS mismatches FROM ${tableSql(r)} AS t WHERE <one key range>`,
      `read-only walk over the ${describeRowKey(r)}, one short READ ONLY transaction per batch`,
    ),
    ...waitsOnce(0),
  };
}
