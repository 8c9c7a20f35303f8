import { quoteIdent } from '@phaseflag/core';
import type { ResolvedMigration } from '../../catalog/resolved.js';
import { displayKeySql, keyParam, keySql, qualifiedTable, TABLE_ALIAS } from '../backfill/keys.js';
import { expressionValue } from '../../sql/text.js';
import type { Session, TransactionOptions } from '../../driver/session.js';

/**
 * Errors that come from one row's values, not from the statement or the server: data exceptions (class 22:
 * invalid input syntax, division by zero, a value out of range for the new type), integrity violations (23),
 * a RAISE in a user function (P0), errors raised inside a routine (38, 39, 2F). A statement over many rows
 * that fails with one of these fails the same way on the row alone, so halving the rows finds it.
 */
export function isRowLevelError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^(22|23|P0|38|39|2F)/.test(code);
}

/** One row that an expression could not be evaluated on: its key (jsonb text and display form), the old value, the error. */
export interface FailedRow {
  /** jsonb_build_array of the primary key, as text: what is stored and passed back as a key parameter. */
  readonly keyText: string;
  /** The key for people and JSON (integers beyond 2^53 as strings). */
  readonly key: unknown[];
  /** The old column's value as text (null when it is NULL or there is no old column). */
  readonly oldValue: string | null;
  readonly error: string;
  readonly sqlstate: string | null;
}

/** What one chunk did: rows it covered, and the last key (null when it covered none). */
export interface Chunk {
  readonly scanned: number;
  readonly lastKey: string | null;
}

export interface BisectWalk {
  /** Evaluates up to `limit` rows after `after` (null: from the start); throws when a row fails. */
  chunk(after: string | null, limit: number): Promise<Chunk>;
  /** The first row after `after` (the one a one-row chunk failed on), or undefined when there is none. */
  rowAfter(after: string | null): Promise<Omit<FailedRow, 'error' | 'sqlstate'> | undefined>;
  /** Evaluates the chunk's expressions over the one row with this key (jsonb text); throws when the row fails. */
  evaluateRow(keyText: string): Promise<void>;
  /** Called for each row a one-row chunk failed on; the walk goes on after it. */
  onFailure(row: FailedRow): Promise<void> | void;
}

/**
 * Covers up to `limit` rows after `after` with `walk.chunk`. A chunk that fails with a row-level error is halved
 * (each half its own short statement) until the failing row is alone; that row is reported and the walk goes on
 * after it, so every failing row is found, with its error, in about log2(limit) extra statements per row.
 */
export async function walkBisecting(walk: BisectWalk, after: string | null, limit: number): Promise<Chunk> {
  try {
    return await walk.chunk(after, limit);
  } catch (error) {
    if (!isRowLevelError(error)) throw error;
    if (limit === 1) {
      // Named by key and evaluated again by key: under concurrent inserts, "the first row after" may be another
      // row by now (a key allocated earlier that committed later), and the error must be the named row's own.
      const row = await walk.rowAfter(after);
      if (row === undefined) throw error;
      try {
        await walk.evaluateRow(row.keyText);
      } catch (own) {
        if (!isRowLevelError(own)) throw own;
        const e = own as { message?: string; code?: string };
        await walk.onFailure({ ...row, error: e.message ?? String(own), sqlstate: e.code ?? null });
        return { scanned: 1, lastKey: row.keyText };
      }
      // That row derives: the one that failed committed after it or was fixed meanwhile; look once more.
      return walk.chunk(after, 1);
    }
    const half = Math.floor(limit / 2);
    const first = await walkBisecting(walk, after, half);
    if (first.scanned < half) return first;
    const second = await walkBisecting(walk, first.lastKey, limit - half);
    return { scanned: first.scanned + second.scanned, lastKey: second.lastKey ?? first.lastKey };
  }
}

/**
 * `$1` the key to start after (null: from the start), optional `$2` an upper key (inclusive): the first row's key
 * (text and display) and the old column as text. Reads no expression, so it cannot fail on the row.
 */
export function rowAfterSql(r: ResolvedMigration, bounded: boolean): string {
  const key = keySql(r.primaryKey);
  const old =
    r.oldColumn === null || r.oldColumnDropped ? 'NULL' : `${TABLE_ALIAS}.${quoteIdent(r.oldColumn.name)}::text`;
  return `SELECT ${key.json}::text AS key_text, ${displayKeySql(key.json)} AS key, ${old} AS old_value
            FROM ${qualifiedTable(r)} AS ${TABLE_ALIAS}
           WHERE ($1::jsonb IS NULL OR ${key.row} > ${keyParam(r.primaryKey, '$1')})
             ${bounded ? `AND ${key.row} <= ${keyParam(r.primaryKey, '$2')}` : ''}
           ORDER BY ${key.list} LIMIT 1`;
}

export interface RowAfterRow {
  key_text: string;
  key: unknown[];
  old_value: string | null;
}

/** A walk's `rowAfter`: runs the `rowAfterSql` statement on the session, in a transaction of the given kind. */
export function rowAfterReader(session: Session, sql: string, options: TransactionOptions): BisectWalk['rowAfter'] {
  return async (after) => {
    const x = await session.transaction(() => session.one<RowAfterRow>(sql, [after]), options);
    return x && { keyText: x.key_text, key: x.key, oldValue: x.old_value };
  };
}

/** `$1` one key (jsonb text): the backfill expression over that row alone (no row when it does not exist). */
export function evaluateKeySql(r: ResolvedMigration, expression: string): string {
  const key = keySql(r.primaryKey);
  return `SELECT ${expressionValue(expression, r.newColumnType)} AS value FROM ${qualifiedTable(r)} AS ${TABLE_ALIAS}
           WHERE ${key.row} = ${keyParam(r.primaryKey, '$1')}`;
}
