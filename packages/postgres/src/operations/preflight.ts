import { ATTR, ValidationError, quoteIdent } from '@phaseflag/core';
import type { ExecutorContext } from '../context.js';
import type { ResolvedMigration } from '../catalog/resolved.js';
import { displayKeySql, keyParam, keySql, qualifiedTable, TABLE_ALIAS } from './backfill/keys.js';
import { Session } from '../driver/session.js';
import { newValueSql } from './backfill/statements.js';
import { expressionValue } from '../sql/text.js';
import { withSpan } from '../telemetry/with-span.js';
import { rowAfterSql, rowAfterReader, walkBisecting, type FailedRow } from './underivable/bisect.js';
import { recordUnderivable } from './underivable/store.js';

export interface PreflightOptions {
  /** Rows per read-only statement (default 5 000). */
  batchSize?: number;
  /** Rows of each kind to report (default 100); counting goes on over the whole table. */
  maxRows?: number;
  /** Record every row that fails to derive in `underivable` (source 'preflight'): the user accepted them. */
  record?: boolean;
  signal?: AbortSignal;
}

/** One row the preflight reports. */
export interface PreflightRow {
  readonly key: unknown[];
  /** The old column's value as text. */
  readonly oldValue: string | null;
  /** Postgres's error (a row that fails to derive, or whose reverse fails). */
  readonly error?: string;
  /** For a round trip that does not come back: the derived new value and what the reverse makes of it. */
  readonly newValue?: string | null;
  readonly roundTrip?: string | null;
}

/**
 * What the preflight found over the existing rows, before the trigger goes live:
 * - failures: rows the backfill expression cannot derive (an error on the row's value). They would fail the
 *   backfill, and every write to them would be recorded by the trigger; dual-write refuses while there are any,
 *   unless they are accepted.
 * - roundTrip: rows where reverse(backfill(row)) does not give the old value back (or the reverse fails). Reported
 *   as warnings, never blocking: a lossy reverse (rounding, lower-casing) is often intended, and it only matters
 *   for writers that write the new column alone.
 */
export interface PreflightResult {
  readonly migrationId: string;
  readonly rowsChecked: number;
  readonly failures: number;
  readonly failedRows: readonly PreflightRow[];
  /** Null when the migration has no reverse expression (nothing to round-trip). */
  readonly roundTripMismatches: number | null;
  readonly roundTripRows: readonly PreflightRow[];
  readonly durationMs: number;
  /** False when aborted before the end of the table. */
  readonly complete: boolean;
  readonly checkedAt: string;
  /** The failures were accepted (dual-write --accept-preflight-failures) and recorded in `underivable`. */
  readonly accepted: boolean;
}

interface ChunkRow {
  scanned: number;
  last_key: string | null;
  mismatched: number;
  sample: PreflightRow[] | null;
}

/**
 * Evaluates the backfill expression, and the round trip through the reverse, over every existing row, by
 * primary key in short READ ONLY statements (keyset, no snapshot held across batches); a batch that fails on a
 * row is halved down to the row (underivable/bisect.ts), so every failing row is found with its error.
 */
export async function runPreflight(
  ctx: ExecutorContext,
  r: ResolvedMigration,
  opts: PreflightOptions = {},
): Promise<PreflightResult> {
  const id = r.migration.id;
  const batchSize = opts.batchSize ?? 5000;
  const maxRows = opts.maxRows ?? 100;
  if (!Number.isInteger(batchSize) || batchSize < 1 || !Number.isInteger(maxRows) || maxRows < 0) {
    throw new ValidationError(
      'PF_INVALID_OPTIONS',
      `Invalid preflight options ${JSON.stringify({ batchSize, maxRows })}.`,
      {
        value: opts,
        migrationId: id,
        hint: 'batchSize is a positive integer, maxRows a non-negative one.',
      },
    );
  }
  const started = ctx.clock.now();
  return withSpan(
    ctx.tracer,
    'phaseflag.preflight',
    { attributes: { [ATTR.migrationId]: id, [ATTR.table]: `${r.schema}.${r.table}` } },
    async (span) => {
      const st = preflightStatements(r);
      const rowAfter = rowAfterSql(r, false);
      const readOnly = { readOnly: true, searchPath: r.searchPath };
      const failedRows: PreflightRow[] = [];
      const roundTripRows: PreflightRow[] = [];
      let failures = 0;
      let mismatched = 0;
      let rowsChecked = 0;
      let pending: FailedRow[] = [];
      let complete = st === null;
      const session = await Session.open(ctx.knex);
      try {
        let cursor: string | null = null;
        while (st !== null && !opts.signal?.aborted) {
          const chunk = await walkBisecting(
            {
              chunk: async (after, limit) => {
                const row = (await session.transaction(
                  () => session.one<ChunkRow>(st.chunk, [after, limit, Math.max(0, maxRows - roundTripRows.length)]),
                  readOnly,
                ))!;
                rowsChecked += row.scanned;
                mismatched += row.mismatched;
                roundTripRows.push(...(row.sample ?? []));
                return { scanned: row.scanned, lastKey: row.last_key };
              },
              rowAfter: rowAfterReader(session, rowAfter, readOnly),
              evaluateRow: async (keyText) => {
                await session.transaction(() => session.query(st.row, [keyText]), readOnly);
              },
              onFailure: async (row) => {
                rowsChecked++;
                // The round trip failed on this row: the backfill alone may still derive it (a reverse error).
                const derives =
                  st.derive !== null &&
                  (await session
                    .transaction(() => session.one(st.derive!, [row.keyText]), readOnly)
                    .then(
                      () => true,
                      () => false,
                    ));
                if (derives) {
                  mismatched++;
                  if (roundTripRows.length < maxRows)
                    roundTripRows.push({ key: row.key, oldValue: row.oldValue, error: `reverse: ${row.error}` });
                  return;
                }
                failures++;
                if (failedRows.length < maxRows)
                  failedRows.push({ key: row.key, oldValue: row.oldValue, error: row.error });
                if (opts.record) pending.push(row);
              },
            },
            cursor,
            batchSize,
          );
          if (pending.length > 0) {
            await recordUnderivable(ctx, id, pending, 'preflight');
            pending = [];
          }
          if (chunk.lastKey !== null) cursor = chunk.lastKey;
          if (chunk.scanned < batchSize) {
            complete = true;
            break;
          }
        }
      } finally {
        await session.release();
      }
      const result: PreflightResult = {
        migrationId: id,
        rowsChecked,
        failures,
        failedRows,
        roundTripMismatches: st?.roundTrip ? mismatched : null,
        roundTripRows,
        durationMs: ctx.clock.now() - started,
        complete,
        checkedAt: new Date(ctx.clock.now()).toISOString(),
        accepted: opts.record === true,
      };
      span.setAttributes({
        'phaseflag.preflight.rows': rowsChecked,
        'phaseflag.preflight.failures': failures,
        'phaseflag.preflight.round_trip_mismatches': mismatched,
      });
      ctx.logger.info(
        `preflight of ${id}: ${rowsChecked} row(s), ${failures} cannot be derived, ${mismatched} do not round-trip (${result.durationMs} ms)`,
        { migrationId: id, rowsChecked, failures, roundTripMismatches: mismatched },
      );
      return result;
    },
    { activate: false },
  );
}

/**
 * chunk: $1 key to start after (null: the start), $2 rows, $3 round-trip rows to sample. Evaluates the
 * backfill (and the reverse over the derived value, the other columns as they are) for every row of the chunk.
 * derive: $1 one key; the backfill alone. Null when there is no expression to check.
 */
function preflightStatements(
  r: ResolvedMigration,
): { chunk: string; derive: string | null; roundTrip: boolean; row: string } | null {
  const expression = r.migration.backfill;
  if (expression === null) return null;
  const key = keySql(r.primaryKey);
  const table = qualifiedTable(r);
  const newName = r.migration.newColumn.name;
  const value = newValueSql(r, expression);
  const roundTrip = r.migration.reverse !== null && r.oldColumn !== null && !r.oldColumnDropped;
  const columns = [...r.columns.keys()].filter((c) => c !== newName).map((c) => `${TABLE_ALIAS}.${quoteIdent(c)}`);
  const old = roundTrip ? quoteIdent(r.oldColumn.name) : null;
  // The reverse sees the row with its new column replaced by the derived value, under the same names.
  const back = roundTrip ? expressionValue(r.migration.reverse, r.oldColumn.type) : 'NULL';
  const differs = roundTrip ? `${back} IS DISTINCT FROM ${old}` : 'false';
  // The rows are chosen in a subquery that computes no expression (see BatchStatements.evaluate): an error
  // always belongs to a row of the chunk.
  const inner = (rows: string) => `SELECT ${[...columns, `${value} AS ${quoteIdent(newName)}`].join(', ')}
                   FROM (${rows}) AS ${TABLE_ALIAS}`;
  const chunkRows = `SELECT * FROM ${table} AS ${TABLE_ALIAS} WHERE ($1::jsonb IS NULL OR ${key.row} > ${keyParam(r.primaryKey, '$1')})
                      ORDER BY ${key.list} LIMIT $2`;
  const oneRow = `SELECT * FROM ${table} AS ${TABLE_ALIAS} WHERE ${key.row} = ${keyParam(r.primaryKey, '$1')}`;
  const chunk = `
    WITH c AS (
      SELECT ${key.json}::text AS __pf_key, row_number() OVER (ORDER BY ${key.list}) AS __pf_n, ${quoteIdent(newName)}::text AS __pf_new,
             ${roundTrip ? `${old}::text` : 'NULL::text'} AS __pf_old, ${back}::text AS __pf_back, ${differs} AS __pf_differs
        FROM (${inner(chunkRows)}) AS ${TABLE_ALIAS}
    )
    SELECT count(*)::int AS scanned, (SELECT __pf_key FROM c ORDER BY __pf_n DESC LIMIT 1) AS last_key,
           count(*) FILTER (WHERE __pf_differs)::int AS mismatched,
           (SELECT jsonb_agg(jsonb_build_object('key', ${displayKeySql('__pf_key::jsonb')}, 'oldValue', __pf_old, 'newValue', __pf_new, 'roundTrip', __pf_back) ORDER BY __pf_n)
              FROM (SELECT * FROM c WHERE __pf_differs ORDER BY __pf_n LIMIT $3) s) AS sample
      FROM c`;
  const derive = roundTrip
    ? `SELECT ${value} FROM ${table} AS ${TABLE_ALIAS} WHERE ${key.row} = ${keyParam(r.primaryKey, '$1')}`
    : null;
  // The same evaluation (backfill, and the reverse over its value) for one row: fails when that row fails.
  const row = `SELECT ${quoteIdent(newName)}::text, ${back}::text FROM (${inner(oneRow)}) AS ${TABLE_ALIAS}`;
  return { chunk, derive, roundTrip, row };
}
