import { ValidationError, type Migration } from '@phaseflag/core';
import type { Knex } from 'knex';
import type { Fail } from './probe-site.js';
import { findTable } from './table.js';

type Db = Knex | Knex.Transaction;

/** The new column's foreign key, resolved: the referenced table's schema as the catalog has it. */
export interface ResolvedReference {
  readonly name: string;
  readonly schema: string;
  readonly table: string;
  readonly column: string;
  readonly onDelete: 'no action' | 'restrict' | 'cascade' | 'set null';
}

/**
 * Checks `newColumn.references` against the catalog: the referenced table exists and its column carries a primary
 * key or unique constraint of its own (Postgres refuses a foreign key to anything else). A partitioned migration
 * table is refused: Postgres (up to 17) cannot add a NOT VALID foreign key there, so it would scan every partition
 * under a lock that blocks writes.
 */
export async function resolveReference(
  trx: Knex.Transaction,
  migration: Migration,
  currentSchema: string,
  partitioned: boolean,
  fail: Fail,
): Promise<ResolvedReference | undefined> {
  const ref = migration.newColumn.references;
  if (ref === null) return undefined;
  if (partitioned) {
    throw new ValidationError(
      'PF_INVALID_MIGRATION',
      `"${migration.table.name}" is partitioned: Postgres cannot add its foreign key NOT VALID, and validating it at once blocks writes for the whole scan.`,
      {
        value: ref,
        migrationId: migration.id,
        hint: 'Leave newColumn.references off and add the foreign key to each partition (ADD … NOT VALID, then VALIDATE), then to the parent.',
      },
    );
  }
  const schema = ref.table.schema ?? currentSchema;
  const where = `${schema}.${ref.table.name}`;
  const rel = await findTable(trx, schema, ref.table.name, fail);
  const keyed = (
    await trx.raw(
      `SELECT EXISTS (SELECT FROM pg_constraint con
                        JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = con.conkey[1]
                       WHERE con.conrelid = ? AND con.contype IN ('p', 'u') AND cardinality(con.conkey) = 1
                         AND a.attname = ?) AS keyed,
              EXISTS (SELECT FROM pg_attribute WHERE attrelid = ? AND attname = ? AND attnum > 0 AND NOT attisdropped) AS present`,
      [rel.oid, ref.column, rel.oid, ref.column],
    )
  ).rows[0] as { keyed: boolean; present: boolean };
  if (!keyed.present) {
    return fail(
      'PF_UNKNOWN_COLUMN',
      `Column "${ref.column}" (newColumn.references.column) does not exist in ${where}.`,
      ref.column,
      'Name the referenced table and its key column.',
    );
  }
  if (!keyed.keyed) {
    return fail(
      'PF_UNKNOWN_COLUMN',
      `Column "${ref.column}" of ${where} is neither its primary key nor a unique constraint, which a foreign key needs.`,
      ref.column,
      `Reference the key of ${where}, or give "${ref.column}" a unique constraint first.`,
    );
  }
  return { name: ref.name, schema, table: ref.table.name, column: ref.column, onDelete: ref.onDelete };
}

export type ForeignKeyState =
  | { readonly kind: 'missing' }
  | { readonly kind: 'ours'; readonly validated: boolean }
  | { readonly kind: 'foreign'; readonly detail: string };

/** The constraint of that name on the table: ours when it is a foreign key from `column`. */
export async function readForeignKey(
  db: Db,
  schema: string,
  table: string,
  name: string,
  column: string,
): Promise<ForeignKeyState> {
  const row = (
    await db.raw(
      `SELECT con.contype, con.convalidated AS validated, pg_get_constraintdef(con.oid) AS definition,
              con.conkey = ARRAY[(SELECT attnum FROM pg_attribute WHERE attrelid = c.oid AND attname = ?)] AS "sameColumn"
         FROM pg_constraint con
         JOIN pg_class c ON c.oid = con.conrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ? AND c.relname = ? AND con.conname = ?`,
      [column, schema, table, name],
    )
  ).rows[0] as { contype: string; validated: boolean; definition: string; sameColumn: boolean | null } | undefined;
  if (!row) return { kind: 'missing' };
  if (row.contype !== 'f' || !row.sameColumn)
    return {
      kind: 'foreign',
      detail: `constraint "${name}" exists and is not a foreign key from "${column}" (${row.definition})`,
    };
  return { kind: 'ours', validated: row.validated };
}
