import { ConflictError, quoteIdent, type Migration } from '@phaseflag/core';
import type { Knex } from 'knex';
import { pgError } from '../sql/pg-error.js';
import { probeName, type Fail } from './probe-site.js';
import { readConstraint, readIndexState } from './state.js';

/**
 * The new column's declaration as Postgres reads it: its type (known, with valid modifiers), its constant default
 * (a valid value of that type, fixed at plan time), and the names of its index and check (free, or ours).
 */

/**
 * to_regtype() accepts exactly one type name (it parses `SELECT NULL::<text>` and refuses anything more) and gives
 * NULL for unknown names, but ignores typmods; creating a one-column temporary table then applies the typmod rules
 * ("numeric(1001)" is refused) and gives the type's identity.
 */
export async function probeType(
  trx: Knex.Transaction,
  migration: Migration,
  fail: Fail,
): Promise<{ typid: number; typmod: number }> {
  const type = migration.newColumn.type;
  const refuse = (why: string): never =>
    fail(
      'PF_UNKNOWN_TYPE',
      `Type "${type}" of "${migration.newColumn.name}" is not usable: ${why}.`,
      type,
      'Use a type the database knows, e.g. "numeric(12,2)", "text", "timestamptz" (create enums and domains beforehand).',
    );
  const sql = 'SELECT to_regtype(?) IS NOT NULL AS known';
  let known = false;
  try {
    known = (await trx.raw(sql, [type])).rows[0].known as boolean;
  } catch (e) {
    refuse(pgError(e, sql).message);
  }
  if (!known) refuse('the database has no type of that name');
  const table = probeName('pf_type_probe', migration.table.name);
  const create = `CREATE TEMP TABLE ${quoteIdent(table)} (v\n${type}\n)`;
  try {
    await trx.raw(create);
  } catch (e) {
    refuse(pgError(e, create).message);
  }
  const cols = (
    await trx.raw(
      'SELECT atttypid::int AS typid, atttypmod AS typmod FROM pg_attribute WHERE attrelid = ?::regclass AND attnum > 0',
      [`pg_temp.${quoteIdent(table)}`],
    )
  ).rows as { typid: number; typmod: number }[];
  if (cols.length !== 1) refuse('it does not name exactly one type');
  return cols[0]!;
}

/** The declared default, cast to the type by Postgres from a bound parameter and rendered back by quote_literal. */
export async function probeDefault(
  trx: Knex.Transaction,
  migration: Migration,
  type: string,
  typid: number,
  fail: Fail,
): Promise<string | null> {
  const value = migration.newColumn.default;
  if (value === undefined || value === null) return null;
  const sent = `SELECT quote_literal(CAST(? AS ${type})::text) AS literal, (SELECT typcategory FROM pg_type WHERE oid = ?) AS category`;
  let row: { literal: string; category: string };
  try {
    row = (await trx.raw(sent, [typeof value === 'string' ? value : String(value), typid])).rows[0];
  } catch (e) {
    return fail(
      'PF_INVALID_EXPRESSION',
      `The default ${JSON.stringify(value)} of "${migration.newColumn.name}" is not a valid ${type}: ${pgError(e, sent).message}.`,
      value,
      `Give a constant of type ${type} (a string, number or boolean), or no default.`,
    );
  }
  // 'now', 'today', … are read once, here; as a default they would freeze plan time into every row.
  if (row.category === 'D' && typeof value === 'string' && /^\s*(now|today|tomorrow|yesterday)\s*$/i.test(value)) {
    fail(
      'PF_VOLATILE_EXPRESSION',
      `The default "${value}" of "${migration.newColumn.name}" would be evaluated once, at plan time.`,
      value,
      'A column default here must be a constant; leave it out and let the backfill or the application supply the time.',
    );
  }
  return row.literal;
}

/** An index or constraint of the declared name that is not ours would make `IF NOT EXISTS` skip silently. */
export async function refuseTakenNames(trx: Knex.Transaction, migration: Migration, schema: string): Promise<void> {
  const { index, check, name: column } = migration.newColumn;
  if (index) {
    const state = await readIndexState(trx, schema, migration.table.name, index.name, column, index.unique);
    if (state.kind === 'foreign') {
      throw new ConflictError(
        'PF_MIGRATION_CONFLICT',
        `The index name of "${migration.id}" is taken: ${state.detail}.`,
        {
          value: index.name,
          migrationId: migration.id,
          hint: 'Name the index explicitly (newColumn.index.name) with a name not used in the schema.',
        },
      );
    }
  }
  if (check) {
    const state = await readConstraint(trx, schema, migration.table.name, check.name);
    if (state.kind === 'foreign') {
      throw new ConflictError(
        'PF_MIGRATION_CONFLICT',
        `The check constraint name of "${migration.id}" is taken: ${state.detail}.`,
        {
          value: check.name,
          migrationId: migration.id,
          hint: 'Name the check explicitly (newColumn.check.name) with a name not used on the table.',
        },
      );
    }
  }
}
