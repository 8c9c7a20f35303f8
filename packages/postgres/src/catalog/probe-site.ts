import { CatalogError, quoteIdent, type ErrorCodeOf } from '@phaseflag/core';
import type { Knex } from 'knex';
import { pgError, SQLSTATE } from '../sql/pg-error.js';
import { regclassText } from '../sql/text.js';

/**
 * Where the catalog probes run: a transaction that is always rolled back, so a probe leaves no trace; the empty
 * copy of the table in pg_temp they analyse expressions over (probe.ts), and names for other probe objects beside
 * it; and how a probe refuses (`Fail`).
 */

/** knex treats rollback() without an error as a failed transaction, so the probe leaves by throwing this instead. */
class RolledBack extends Error {
  constructor(readonly value: unknown) {
    super('phaseflag: probe transaction rolled back on purpose');
  }
}

export async function inRolledBackTransaction<T>(knex: Knex, work: (trx: Knex.Transaction) => Promise<T>): Promise<T> {
  try {
    await knex.transaction(async (trx) => {
      throw new RolledBack(await work(trx));
    });
  } catch (e) {
    if (e instanceof RolledBack) return e.value as T;
    throw e;
  }
  throw new Error('unreachable: the probe transaction committed');
}

/** Maps a lock_timeout met by the probes themselves (a DDL holds the table) to the error DDL would give. */
export function isLockTimeout(error: unknown): boolean {
  return !(error instanceof CatalogError) && pgError(error).code === SQLSTATE.lockNotAvailable;
}

export type Fail = (code: ErrorCodeOf<'CatalogError'>, message: string, value: unknown, hint: string) => never;

export interface ProbeSite {
  readonly trx: Knex.Transaction;
  readonly migrationId: string;
  /** The table's name, which is also the name of its copy in pg_temp. */
  readonly table: string;
  /** Every column of the copy (the table's columns plus the new one). */
  readonly columns: readonly string[];
  /** The session's search_path setting, restored after the analysis queries that run with pg_catalog alone. */
  readonly searchPath: string;
  readonly fail: Fail;
}

/** A name for a probe object in pg_temp that cannot be the copy of the user's table. */
export function probeName(base: string, table: string): string {
  return base === table ? `${base}_` : base;
}

export function copyName(site: Pick<ProbeSite, 'table'>): string {
  return `pg_temp.${quoteIdent(site.table)}`;
}

/** The copy's name as a `::regclass` bind value (plain quoting, which regclass input reads; see regclassText). */
export function copyRegclass(site: Pick<ProbeSite, 'table'>): string {
  return regclassText('pg_temp', site.table);
}
