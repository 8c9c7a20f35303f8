import { quoteIdent } from '@phaseflag/core';
import type { ResolvedMigration } from '../../catalog/resolved.js';
import { advisoryHeldSql } from '../../driver/advisory.js';
import { expressionValue, sqlLiteral } from '../../sql/text.js';
import { displayKeySql, keyParam, keySql, qualifiedTable, TABLE_ALIAS } from './keys.js';

/**
 * The statements of one backfill batch, built once per run. Each batch is one short transaction:
 *
 *   phase     SELECT, no lock            is the migration still 'backfilling'? (skip the work if not)
 *   probe     pk index, no lock          the `size`-th key after the checkpoint, if there is one
 *   scan      pk index, no lock          only when the probe finds none (the range's last batch): how many keys
 *                                        are left up to the range's upper key, and the last of them
 *   update    ROW EXCLUSIVE on the table, row locks only on the rows it changes
 *   commit    row lock on the migration row, held until COMMIT (milliseconds)
 *
 * The probe is an index-only scan that skips `size - 1` keys and returns one: it costs a quarter of counting the
 * batch's keys through a CTE (2 ms instead of 8 for 25k keys, about 5% of a batch), and a full batch needs no
 * count: it has exactly `size` keys.
 *
 * Finding the batch's last key first and then updating `checkpoint < pk <= last` with constant bounds lets the
 * planner see a narrow pk range and use the index. Joining the UPDATE to a CTE of keys instead makes it hash-join
 * a sequential scan of the whole table once the table is large, i.e. a full scan per batch. The UPDATE re-reads
 * each row it changes at its newest version (READ COMMITTED re-evaluation), so a concurrent application write is
 * never overwritten with a value computed from an older row.
 *
 * The commit statement is the fence for pause and rollback: it only counts the batch while the phase is
 * 'backfilling', and its row lock on the migration row orders it against the engine's transition. A transition
 * that commits first makes it match nothing (the runner rolls the batch back); a batch that gets there first
 * makes the transition wait for its COMMIT. So once a transition away from 'backfilling' has committed, no batch
 * commits after it. Parallel workers only queue on that row for the moment of their commit; a shared lock taken
 * at the start of each batch would instead deadlock two workers both upgrading it.
 */
export interface BatchStatements {
  /**
   * The batch's first reads, sent in BEGIN's round trip with their values inlined as literals (see worker.ts): the
   * phase, with `session_replication_role` set to replica for this transaction when the table's triggers may be
   * skipped (triggerBypassSql; without a bypass, the phase alone), then the probe: the `size`-th key after the
   * checkpoint, or no row when fewer are left.
   */
  opening(v: OpeningValues): string[];
  /**
   * The batch's UPDATE up to its last key (leaving the keys in `excluded`, recorded rows the expression cannot
   * derive, alone) and the commit statement, in one round trip. The commit statement returns the range's rows_done
   * and whether the runner lock's backend still holds the lock (read after the migration row is locked: the fence
   * against a second runner, see holder.ts); no UPDATE when the batch has no row left.
   */
  closing(v: ClosingValues): string[];
  /** $1 upper key, $2 limit */
  readonly scanFirst: string;
  /** $1 checkpoint key, $2 upper key, $3 limit */
  readonly scanNext: string;
  /** The UPDATE with $1 checkpoint key, $2 batch's last key: what `plan` shows of a batch. */
  readonly updateNext: string;
  /**
   * Evaluates the expression (and nothing else) over up to $3 rows after key $1 (null: from the range's start)
   * up to key $2: fails on a row it cannot derive. Read-only; used to find that row (underivable/bisect.ts).
   */
  readonly evaluate: string;
}

export interface OpeningValues {
  readonly migrationId: string;
  readonly bypass: { table: string; ownTrigger: string; newColumn: string } | null;
  readonly from: string | null;
  readonly upper: string;
  readonly size: number;
}

export interface ClosingValues {
  readonly migrationId: string;
  readonly worker: number;
  readonly from: string | null;
  /** The batch's last key (null: no row left, nothing to update). */
  readonly last: string | null;
  /** A jsonb array of keys to leave alone, or null. */
  readonly excluded: string | null;
  readonly scanned: number;
  readonly done: boolean;
  readonly pid: number;
  readonly key: string;
}

export interface ProbeRow {
  last_key: string;
  last_key_display: unknown[];
  reached_upper: boolean;
}

export interface ScanRow {
  scanned: number;
  last_key: string | null;
  last_key_display: unknown[] | null;
  reached_upper: boolean | null;
}

/**
 * A value of one batch as an SQL literal, for the statements sent several to a round trip (simple protocol: no
 * bind parameters). Keys are jsonb text read back from Postgres, ids and names come from the declaration:
 * sqlLiteral quotes them whatever standard_conforming_strings is; numbers are the runner's own integers.
 */
function lit(value: string | number | boolean | null): string {
  if (value === null) return 'NULL';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new Error(`backfill: ${value} is not an integer`);
    return String(value);
  }
  return sqlLiteral(value);
}

/** The new column's value over the row (see expressionValue): the UPDATE's, verify's and the trigger's. */
export function newValueSql(r: ResolvedMigration, expression: string): string {
  return expressionValue(expression, r.newColumnType);
}

export function buildBatchStatements(r: ResolvedMigration, stateSchema: string, expression: string): BatchStatements {
  const table = qualifiedTable(r);
  const key = keySql(r.primaryKey);
  const aliases = r.primaryKey.map((_, i) => `__pf_key_${i}`);
  const select = key.qualified.map((c, i) => `${c} AS ${aliases[i]}`).join(', ');
  const aliasRow = `(${aliases.join(', ')})`;
  const aliasDesc = aliases.map((a) => `${a} DESC`).join(', ');
  const scan = (lower: string | null, upper: string, limit: string): string => `
    WITH batch AS (
      SELECT ${select} FROM ${table} AS ${TABLE_ALIAS}
       WHERE ${lower === null ? '' : `${key.row} > ${keyParam(r.primaryKey, lower)} AND `}${key.row} <= ${keyParam(r.primaryKey, upper)}
       ORDER BY ${key.list} LIMIT ${limit}
    ), last AS (SELECT * FROM batch ORDER BY ${aliasDesc} LIMIT 1)
    SELECT (SELECT count(*) FROM batch)::int AS scanned,
           (SELECT jsonb_build_array(${aliases.join(', ')})::text FROM last) AS last_key,
           (SELECT ${displayKeySql(`jsonb_build_array(${aliases.join(', ')})`)} FROM last) AS last_key_display,
           (SELECT ${aliasRow} >= ${keyParam(r.primaryKey, upper)} FROM last) AS reached_upper`;
  // The skipped keys must not be projected: Postgres computes a target list for every row OFFSET discards, so
  // the subquery returns bare key columns and the one row left is dressed outside it.
  const probe = (lower: string | null, upper: string, limit: string): string => `
    SELECT jsonb_build_array(${aliases.join(', ')})::text AS last_key,
           ${displayKeySql(`jsonb_build_array(${aliases.join(', ')})`)} AS last_key_display,
           ${aliasRow} >= ${keyParam(r.primaryKey, upper)} AS reached_upper
      FROM (SELECT ${select} FROM ${table} AS ${TABLE_ALIAS}
             WHERE ${lower === null ? '' : `${key.row} > ${keyParam(r.primaryKey, lower)} AND `}${key.row} <= ${keyParam(r.primaryKey, upper)}
             ORDER BY ${key.list} OFFSET ${limit}::bigint - 1 LIMIT 1) AS probe`;
  const newColumn = quoteIdent(r.migration.newColumn.name);
  const value = newValueSql(r, expression);
  const stale = staleSql(r, newColumn, value);
  const update = (lower: string | null, upper: string): string => `
    UPDATE ${table} AS ${TABLE_ALIAS} SET ${newColumn} = ${value}
     WHERE ${lower === null ? '' : `${key.row} > ${keyParam(r.primaryKey, lower)} AND `}${key.row} <= ${keyParam(r.primaryKey, upper)}
       AND ${stale}`;
  // CASE, not AND NOT: it guarantees the expression is never evaluated on an excluded row.
  const updateExcluding = (lower: string | null, upper: string, excluded: string): string => `
    UPDATE ${table} AS ${TABLE_ALIAS} SET ${newColumn} = ${value}
     WHERE ${lower === null ? '' : `${key.row} > ${keyParam(r.primaryKey, lower)} AND `}${key.row} <= ${keyParam(r.primaryKey, upper)}
       AND CASE WHEN ${excluded}::jsonb @> jsonb_build_array(${key.json}) THEN false
                ELSE ${stale} END`;
  const s = quoteIdent(stateSchema);
  const phaseAndBypass = (id: string, table: string, ownTrigger: string, column: string): string => `
      SELECT phase,
             set_config('session_replication_role',
                        CASE WHEN ${triggerBypassSql(table, ownTrigger, column)} THEN 'replica' ELSE current_setting('session_replication_role') END,
                        true) AS replication_role
        FROM ${s}.migrations WHERE id = ${id}`;
  const commit = (
    id: string,
    worker: string,
    scanned: string,
    checkpoint: string,
    done: string,
    pid: string,
    key: string,
  ): string => `
      WITH counted AS (
        UPDATE ${s}.migrations SET rows_backfilled = rows_backfilled + ${scanned}
         WHERE id = ${id} AND phase = 'backfilling' RETURNING 1
      )
      UPDATE ${s}.backfill_ranges
         SET checkpoint = coalesce(${checkpoint}::jsonb, checkpoint), done = ${done}, rows_done = rows_done + ${scanned},
             batches = batches + 1, updated_at = now()
       WHERE migration_id = ${id} AND worker = ${worker} AND EXISTS (SELECT 1 FROM counted)
      RETURNING rows_done, ${advisoryHeldSql(pid, key)} AS held`;
  return {
    scanFirst: scan(null, '$1', '$2'),
    scanNext: scan('$1', '$2', '$3'),
    updateNext: update('$1', '$2'),
    // The rows are chosen (and sorted) in a subquery that computes no expression; the expression runs above
    // the LIMIT, on those rows only, so an error always belongs to a row of the chunk (whatever the plan).
    evaluate: `
      SELECT count(*)::int AS scanned, count(__pf_value)::int AS derived, (array_agg(__pf_key ORDER BY __pf_n DESC))[1] AS last_key
        FROM (SELECT ${key.json}::text AS __pf_key, ${value} AS __pf_value, row_number() OVER (ORDER BY ${key.list}) AS __pf_n
                FROM (SELECT * FROM ${table} AS ${TABLE_ALIAS}
                       WHERE ($1::jsonb IS NULL OR ${key.row} > ${keyParam(r.primaryKey, '$1')}) AND ${key.row} <= ${keyParam(r.primaryKey, '$2')}
                       ORDER BY ${key.list} LIMIT $3) AS ${TABLE_ALIAS}) AS s`,
    opening: (v) => {
      const [id, from, upper, size] = [
        lit(v.migrationId),
        v.from === null ? null : lit(v.from),
        lit(v.upper),
        lit(v.size),
      ];
      const phase = v.bypass
        ? phaseAndBypass(id, lit(v.bypass.table), lit(v.bypass.ownTrigger), lit(v.bypass.newColumn))
        : `SELECT phase FROM ${s}.migrations WHERE id = ${id}`;
      return [phase, probe(from, upper, size)];
    },
    closing: (v) => {
      const from = v.from === null ? null : lit(v.from);
      const counted = commit(
        lit(v.migrationId),
        lit(v.worker),
        lit(v.scanned),
        lit(v.last),
        lit(v.done),
        lit(v.pid),
        lit(v.key),
      );
      if (v.last === null) return [counted];
      const last = lit(v.last);
      return [v.excluded === null ? update(from, last) : updateExcluding(from, last, lit(v.excluded)), counted];
    },
  };
}

/**
 * The batch's filter: the rows whose new column differs from the expression, so rows already right (dual-written,
 * or covered by an earlier run) are not written again. `new IS DISTINCT FROM expr` alone evaluates the expression
 * twice for every row it changes (once here, once in SET): 10% of the backend's CPU for `lower(email)` over 1M
 * rows, measured by its schedstat (the single UPDATE's and a loop of unfiltered batches' were within 1% of each
 * other). A still-NULL new column whose inputs are not all NULL is nearly always a row to fill, so that branch
 * comes first and OR stops there; the expression is evaluated in the filter only for rows that already have a
 * value, or whose inputs are all NULL (a strict expression gives NULL, which is then left alone). The cost: a row
 * whose expression gives NULL from non-NULL inputs (`nullif(email, '')`) is written again, to the same NULL,
 * each time a run covers it. The filter is a superset of the differing rows, never less.
 */
function staleSql(r: ResolvedMigration, newColumn: string, value: string): string {
  const column = `${TABLE_ALIAS}.${newColumn}`;
  const differs = `${column} IS DISTINCT FROM ${value}`;
  const inputs = r.backfillInputs.filter((c) => c !== r.migration.newColumn.name);
  if (inputs.length === 0) return differs;
  const someInput = inputs.map((c) => `${TABLE_ALIAS}.${quoteIdent(c)} IS NOT NULL`).join(' OR ');
  return `((${column} IS NULL AND (${someInput})) OR ${differs})`;
}

/**
 * True when the batch's UPDATE may run with `session_replication_role = replica`, i.e. without firing the table's
 * triggers, because every trigger it would fire is this migration's own sync trigger, which does nothing for the
 * backfill's write (the new column already equals the expression over the row as it is, re-read at its newest
 * version), and nothing else depends on triggers or rules firing:
 *
 * - no other enabled user trigger on UPDATE (an audit, `updated_at`, another migration's sync trigger), and none
 *   enabled for replica mode only, which would start firing; ENABLE ALWAYS triggers fire either way. Triggers on
 *   other events (this migration's own INSERT trigger among them) are not fired by the batch's UPDATE at all;
 * - no foreign key on the new column, in either direction (their checks are internal triggers), and no
 *   deferrable constraint (rechecked by internal triggers); foreign keys on other columns are untouched, since
 *   the backfill changes no key;
 * - no rule other than SELECT (rules obey the setting too).
 *
 * Measured on 1M rows, the sync trigger made each batch's UPDATE 15% (lower(email)) to 42% (int → numeric, whose
 * trigger evaluates the expression again to decide on the reverse direction) slower: see bench/RESULTS.md. The
 * check runs in the batch's transaction after it has taken ROW EXCLUSIVE on the table (see the runner), which
 * blocks CREATE TRIGGER, ALTER TABLE … ENABLE TRIGGER and every constraint change until the batch commits.
 */
export function triggerBypassSql(table: string, ownTrigger: string, newColumn: string): string {
  return `(NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g
                        WHERE g.tgrelid = ${table}::regclass AND NOT g.tgisinternal AND g.tgenabled IN ('O', 'R')
                          AND (g.tgtype::int & 16) <> 0 AND g.tgname <> ${ownTrigger})
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c
                         JOIN pg_catalog.pg_attribute a ON a.attrelid = ${table}::regclass AND a.attname = ${newColumn}
                        WHERE (c.conrelid = ${table}::regclass AND (c.condeferrable OR (c.contype = 'f' AND a.attnum = ANY (c.conkey))))
                           OR (c.confrelid = ${table}::regclass AND a.attnum = ANY (c.confkey)))
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_rewrite w WHERE w.ev_class = ${table}::regclass AND w.ev_type <> '1'))`;
}
