import { quoteIdent, type Migration } from '@phaseflag/core';
import type { Knex } from 'knex';
import { pgError } from '../sql/pg-error.js';
import { embed, expressionValue, forKnex } from '../sql/text.js';

/**
 * The old column's DEFAULT, and what becomes of it at contract. When the new column replaces the old one, an
 * INSERT that leaves the column out relied on that default; once the old column (or the sync trigger that derived
 * the new one from it) is gone, the new column must have a default of its own, or such an INSERT stores NULL —
 * or fails, when the new column is NOT NULL.
 */
export interface OldColumnDefault {
  /** The default as Postgres prints it (pg_get_expr of pg_attrdef), e.g. `'free'::text`, `nextval('s'::regclass)`. */
  readonly sql: string;
  /** No volatile or stable function in it (a default cannot name a column): the same value for every row. */
  readonly constant: boolean;
  /**
   * The new column's default derived from it: the backfill expression evaluated over the old default, cast to the
   * new type and rendered by Postgres as a typed literal (`'FREE'::text`); null when it cannot be derived.
   */
  readonly carriedSql: string | null;
  /** Why it is not carried over (when carriedSql is null). */
  readonly notCarriedBecause: string | null;
}

/**
 * Reads the default and tries to carry it over, inside the caller's rolled-back probe transaction. Each attempt
 * runs under a savepoint, so an expression that fails over the default (`'N/A'::int`) only means "not carried".
 */
export async function probeOldColumnDefault(
  trx: Knex.Transaction,
  migration: Migration,
  tableOid: number,
  oldType: string,
  newType: string,
  backfillInputs: readonly string[],
): Promise<OldColumnDefault | null> {
  const old = migration.oldColumn;
  if (old === null) return null;
  const row = (
    await trx.raw(
      `SELECT pg_get_expr(d.adbin, d.adrelid) AS sql FROM pg_attrdef d
       JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
      WHERE d.adrelid = ? AND a.attname = ? AND NOT a.attisdropped AND a.attgenerated = ''`,
      [tableOid, old],
    )
  ).rows[0] as { sql: string } | undefined;
  if (!row) return null;
  // Postgres accepts a generated column only over immutable functions: a default that passes is a constant
  // (nextval() is volatile, now() and current_user are stable).
  const probe = quoteIdent(`pf_default_probe_${migration.id.replace(/[^A-Za-z0-9_]/g, '_')}`.slice(0, 63));
  const constant = await attempt(
    trx,
    forKnex(`CREATE TEMP TABLE ${probe} (v ${oldType} GENERATED ALWAYS AS (${embed(row.sql)}) STORED)`),
  );
  if (constant !== true) {
    return { sql: row.sql, constant: false, carriedSql: null, notCarriedBecause: `it is not a constant (${constant})` };
  }
  if (migration.backfill === null) {
    return {
      sql: row.sql,
      constant: true,
      carriedSql: null,
      notCarriedBecause: 'the migration has no backfill expression to derive it with',
    };
  }
  const others = backfillInputs.filter((c) => c !== old);
  if (others.length > 0) {
    return {
      sql: row.sql,
      constant: true,
      carriedSql: null,
      notCarriedBecause: `the backfill expression also reads ${others.join(', ')}`,
    };
  }
  let literal = null as string | null;
  const evaluated = await attempt(
    trx,
    forKnex(
      `SELECT quote_literal(${expressionValue(migration.backfill, newType)}::text) AS literal FROM (SELECT (${embed(row.sql)})::${oldType} AS ${quoteIdent(old)}) AS pf_row`,
    ),
    (rows) => {
      literal = (rows[0] as { literal: string | null } | undefined)?.literal ?? null;
    },
  );
  if (evaluated !== true) {
    return {
      sql: row.sql,
      constant: true,
      carriedSql: null,
      notCarriedBecause: `the backfill expression fails over it (${evaluated})`,
    };
  }
  if (literal === null)
    return {
      sql: row.sql,
      constant: true,
      carriedSql: null,
      notCarriedBecause: 'the backfill expression gives NULL for it',
    };
  return { sql: row.sql, constant: true, carriedSql: `${literal}::${newType}`, notCarriedBecause: null };
}

/** Runs one statement under a savepoint: true when it succeeds, else Postgres's message. */
async function attempt(trx: Knex.Transaction, sql: string, onRows?: (rows: unknown[]) => void): Promise<true | string> {
  await trx.raw('SAVEPOINT pf_default_probe');
  try {
    const result = await trx.raw(sql);
    onRows?.(result.rows as unknown[]);
    await trx.raw('RELEASE SAVEPOINT pf_default_probe');
    return true;
  } catch (e) {
    await trx.raw('ROLLBACK TO SAVEPOINT pf_default_probe');
    return pgError(e, sql).message;
  }
}
