import { CatalogError, quoteIdent } from '@phaseflag/core';
import { readColumn } from '../../catalog/state.js';
import type { PlannedStatement } from '../planned-statement.js';
import type { ResolvedMigration } from '../../catalog/resolved.js';
import { dropColumnStatement, dropNewColumn } from './drop-column.js';
import { onTable, run, tableSql, type Step } from './step.js';

const NAME = 'add-column';

/**
 * ACCESS EXCLUSIVE, ≤ lock_timeout per attempt, no table rewrite: the column is added nullable (NOT NULL is
 * enforced at contract, once every row has a value) and its default, if any, is a constant, which Postgres ≥ 11
 * stores in the catalog instead of writing into every row. The constant was rendered by Postgres at plan time
 * (quote_literal of the value cast to the type), never pasted from the declaration.
 */
export function addColumnStatement(r: ResolvedMigration): PlannedStatement {
  const col = r.migration.newColumn.name;
  const def = r.newColumnDefaultSql === null ? '' : ` DEFAULT ${r.newColumnDefaultSql}`;
  return onTable(
    r,
    NAME,
    'ACCESS EXCLUSIVE',
    `ALTER TABLE ${tableSql(r)} ADD COLUMN IF NOT EXISTS ${quoteIdent(col)} ${r.newColumnType}${def}`,
    `add nullable column "${col}" ${r.newColumnType}${def ? ' with a constant default (catalog only, no rewrite)' : ''}`,
  );
}

export const addColumn: Step = {
  name: NAME,
  plan: (r) => [addColumnStatement(r)],
  planRollback: (r) => [dropColumnStatement(r, 'new')],
  async apply(ctx, r, opts) {
    const live = await readColumn(ctx.knex, r.schema, r.table, r.migration.newColumn.name);
    if (live) {
      // Already there (a previous run, or made by hand): checking first means a re-run takes no lock at all.
      if (live.type === r.newColumnType) return;
      throw new CatalogError(
        'PF_COLUMN_TYPE_CONFLICT',
        `Column "${r.migration.newColumn.name}" exists as ${live.type}, not ${r.newColumnType}.`,
        {
          value: { existing: live.type, declared: r.newColumnType },
          migrationId: r.migration.id,
          hint: 'Something changed the column since the plan: inspect it, then pick another name or declare its type.',
        },
      );
    }
    await run(ctx, r, addColumnStatement(r), opts);
  },
  rollback: (ctx, r, opts) => dropNewColumn.apply(ctx, r, opts),
};
