import { GuardRefusedError, quoteIdent } from '@phaseflag/core';
import { readColumn } from '../../catalog/state.js';
import { runDdl } from '../ddl.js';
import type { PlannedStatement } from '../planned-statement.js';
import type { ResolvedMigration } from '../../catalog/resolved.js';
import { markOldColumnDropped, recordOldColumnDrop } from '../../store/dropped-column.js';
import { onTable, run, tableSql, type Step } from './step.js';
import { syncTrigger, syncTriggerPresent } from './sync-trigger.js';

/**
 * ACCESS EXCLUSIVE, ≤ lock_timeout per attempt, catalog only: DROP COLUMN marks the column dropped without
 * rewriting the table (the space comes back as rows are rewritten). Used for the new column when a migration is
 * rolled back and for the old column at contract when asked. The engine decides whether a column may go (it only
 * drops a new column this migration created, and only after the grace period).
 */
export function dropColumnStatement(r: ResolvedMigration, which: 'new' | 'old'): PlannedStatement {
  const col = columnOf(r, which);
  return onTable(
    r,
    `drop-${which}-column`,
    'ACCESS EXCLUSIVE',
    `ALTER TABLE ${tableSql(r)} DROP COLUMN IF EXISTS ${quoteIdent(col)}`,
    `drop the ${which} column "${col}" (catalog only, no rewrite; its indexes and constraints go with it)`,
  );
}

function columnOf(r: ResolvedMigration, which: 'new' | 'old'): string {
  if (which === 'new') return r.migration.newColumn.name;
  if (r.migration.oldColumn === null) throw new Error(`migration "${r.migration.id}" has no old column`);
  return r.migration.oldColumn;
}

function dropColumn(which: 'new' | 'old'): Step {
  return {
    name: `drop-${which}-column`,
    plan: (r) => (which === 'old' && r.migration.oldColumn === null ? [] : [dropColumnStatement(r, which)]),
    planRollback: () => [],
    async apply(ctx, r, opts) {
      if (which === 'old' && r.oldColumn === null) return;
      // The old column's drop is recorded with its type in the DROP's own transaction: services started later
      // resolve the migration without it (see store/dropped-column.ts). Gone already (by hand): recorded alone.
      const record =
        which === 'old' ? recordOldColumnDrop(ctx.stateSchema, r.migration.id, r.oldColumn!.type) : undefined;
      if (!(await readColumn(ctx.knex, r.schema, r.table, columnOf(r, which)))) {
        if (which === 'old') await markOldColumnDropped(ctx.knex, ctx.stateSchema, r.migration.id, r.oldColumn!.type);
        return;
      }
      // The sync function names both columns; a trigger left behind would make every write to the table fail.
      if (await syncTriggerPresent(ctx, r)) await syncTrigger.rollback(ctx, r, opts);
      if (!record) {
        await run(ctx, r, dropColumnStatement(r, which), opts);
        return;
      }
      await runDdl(ctx, dropColumnStatement(r, which), {
        migrationId: r.migration.id,
        ddl: opts?.ddl ?? r.migration.ddl,
        signal: opts?.signal,
        record,
      });
    },
    async rollback(_ctx, r) {
      throw new GuardRefusedError(`The ${which} column of "${r.migration.id}" was dropped; its data is gone.`, {
        code: 'PF_IRREVERSIBLE',
        action: 'rollback',
        from: which === 'new' ? 'rolled-back' : 'contracted',
        value: columnOf(r, which),
        migrationId: r.migration.id,
        hint:
          which === 'new'
            ? 'Run expand again to add the new column back (the backfill then refills it).'
            : 'Restore the old column from a backup if it is needed.',
      });
    },
  };
}

export const dropNewColumn: Step = dropColumn('new');
export const dropOldColumn: Step = dropColumn('old');
