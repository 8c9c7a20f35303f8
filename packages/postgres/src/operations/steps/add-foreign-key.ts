import { ConflictError, DdlFailedError, VerifyFailedError, quoteIdent } from '@phaseflag/core';
import { readForeignKey, type ResolvedReference } from '../../catalog/foreign-key.js';
import type { ExecutorContext } from '../../context.js';
import type { ResolvedMigration } from '../../catalog/resolved.js';
import { displayKeySql, keySql, qualifiedTable, TABLE_ALIAS } from '../backfill/keys.js';
import type { PlannedStatement } from '../planned-statement.js';
import { SQLSTATE } from '../../sql/pg-error.js';
import { qualify } from '../../sql/text.js';
import { onTable, run, tableSql, type Step } from './step.js';

const NAME = 'add-foreign-key';

/**
 * The new column's foreign key, at verify (after the backfill, once the walk found every value's parent): ADD …
 * NOT VALID is catalog only but takes SHARE ROW EXCLUSIVE on both tables for that moment (writes to either wait);
 * VALIDATE then scans the table under SHARE UPDATE EXCLUSIVE, with ROW SHARE on the referenced table, so reads and
 * writes go on. Not at expand: from ADD on, every write whose derived value has no parent fails, and the sync
 * trigger cannot turn that into a recorded row as it does for an expression's error. A VALIDATE that meets a row
 * without a parent (written since the walk) drops the constraint again: no half state is left behind.
 */
const ON_DELETE = { 'no action': 'NO ACTION', restrict: 'RESTRICT', cascade: 'CASCADE', 'set null': 'SET NULL' };

function referenced(ref: ResolvedReference) {
  return { schema: ref.schema, name: ref.table };
}

export function addForeignKeyStatement(r: ResolvedMigration, ref: ResolvedReference): PlannedStatement {
  const col = r.migration.newColumn.name;
  return {
    ...onTable(
      r,
      NAME,
      'SHARE ROW EXCLUSIVE',
      `ALTER TABLE ${tableSql(r)} ADD CONSTRAINT ${quoteIdent(ref.name)} FOREIGN KEY (${quoteIdent(col)}) REFERENCES ${qualify(ref.schema, ref.table)} (${quoteIdent(ref.column)}) ON DELETE ${ON_DELETE[ref.onDelete]} NOT VALID`,
      `add foreign key "${ref.name}" NOT VALID (catalog only; SHARE ROW EXCLUSIVE on both tables for that moment; enforced for new writes at once)`,
    ),
    otherLocks: [{ table: referenced(ref), lock: 'SHARE ROW EXCLUSIVE' }],
  };
}

export function validateForeignKeyStatement(r: ResolvedMigration, ref: ResolvedReference): PlannedStatement {
  return {
    ...onTable(
      r,
      NAME,
      'SHARE UPDATE EXCLUSIVE',
      `ALTER TABLE ${tableSql(r)} VALIDATE CONSTRAINT ${quoteIdent(ref.name)}`,
      `validate "${ref.name}" over existing rows (scans the table; ROW SHARE on ${ref.schema}.${ref.table}; reads and writes continue)`,
    ),
    otherLocks: [{ table: referenced(ref), lock: 'ROW SHARE' }],
  };
}

export function dropForeignKeyStatement(r: ResolvedMigration, ref: ResolvedReference, why = 'drop'): PlannedStatement {
  return {
    ...onTable(
      r,
      NAME,
      'ACCESS EXCLUSIVE',
      `ALTER TABLE ${tableSql(r)} DROP CONSTRAINT IF EXISTS ${quoteIdent(ref.name)}`,
      `${why} foreign key "${ref.name}" (catalog only; ACCESS EXCLUSIVE on both tables for that moment)`,
    ),
    otherLocks: [{ table: referenced(ref), lock: 'ACCESS EXCLUSIVE' }],
  };
}

/** True for a row whose new column names no row of the referenced table (`alias` is the migration's table). */
export function orphanSql(r: ResolvedMigration, ref: ResolvedReference, alias = TABLE_ALIAS): string {
  const col = `${alias}.${quoteIdent(r.migration.newColumn.name)}`;
  return `(${col} IS NOT NULL AND NOT EXISTS (SELECT FROM ${qualify(ref.schema, ref.table)} AS __pf_ref WHERE __pf_ref.${quoteIdent(ref.column)} = ${col}))`;
}

/** Up to `limit` keys of rows without a parent, in key order. */
export async function orphanKeys(ctx: ExecutorContext, r: ResolvedMigration, ref: ResolvedReference, limit = 10) {
  const key = keySql(r.primaryKey);
  const rows = (
    await ctx.knex.raw(
      `SELECT ${displayKeySql(key.json)} AS key FROM ${qualifiedTable(r)} AS ${TABLE_ALIAS}
        WHERE ${orphanSql(r, ref)} ORDER BY ${key.list} LIMIT ${Number(limit)}`,
    )
  ).rows as { key: unknown[] }[];
  return rows.map((row) => row.key);
}

export const addForeignKey: Step = {
  name: NAME,
  plan: (r) =>
    r.references ? [addForeignKeyStatement(r, r.references), validateForeignKeyStatement(r, r.references)] : [],
  planRollback: (r) => (r.references ? [dropForeignKeyStatement(r, r.references)] : []),
  async apply(ctx, r, opts) {
    const ref = r.references;
    if (!ref) return;
    const s = await readForeignKey(ctx.knex, r.schema, r.table, ref.name, r.migration.newColumn.name);
    if (s.kind === 'foreign') {
      throw new ConflictError(
        'PF_MIGRATION_CONFLICT',
        `Cannot add the foreign key of "${r.migration.id}": ${s.detail}.`,
        {
          value: ref.name,
          migrationId: r.migration.id,
          hint: 'Name the foreign key explicitly (newColumn.references.name) with a name not used on the table.',
        },
      );
    }
    if (s.kind === 'ours' && s.validated) return;
    if (s.kind === 'missing') await run(ctx, r, addForeignKeyStatement(r, ref), opts);
    try {
      await run(ctx, r, validateForeignKeyStatement(r, ref), opts);
    } catch (e) {
      const sqlstate =
        e instanceof DdlFailedError ? (e.value as { sqlstate?: string } | undefined)?.sqlstate : undefined;
      if (sqlstate !== SQLSTATE.foreignKeyViolation) throw e;
      await run(ctx, r, dropForeignKeyStatement(r, ref, 'take back the unvalidated'), opts);
      const keys = await orphanKeys(ctx, r, ref);
      throw new VerifyFailedError(
        'PF_VERIFY_FAILED',
        `Foreign key "${ref.name}" of "${r.migration.id}" does not hold: row(s) ${keys.map((k) => JSON.stringify(k)).join(', ')} name no row of ${ref.schema}.${ref.table}; the constraint was dropped again.`,
        {
          value: { constraint: ref.name, orphanKeys: keys },
          migrationId: r.migration.id,
          cause: e,
          hint: `Give those rows a value present in ${ref.schema}.${ref.table}.${ref.column} (or add the missing parents), then run verify again.`,
        },
      );
    }
  },
  async rollback(ctx, r, opts) {
    const ref = r.references;
    if (!ref) return;
    if ((await readForeignKey(ctx.knex, r.schema, r.table, ref.name, r.migration.newColumn.name)).kind === 'ours')
      await run(ctx, r, dropForeignKeyStatement(r, ref), opts);
  },
};
