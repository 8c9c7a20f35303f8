import { ConflictError, quoteIdent, type CheckSpec } from '@phaseflag/core';
import { readConstraint } from '../../catalog/state.js';
import type { PlannedStatement } from '../planned-statement.js';
import type { ResolvedMigration } from '../../catalog/resolved.js';
import { embed } from '../../sql/text.js';
import { onTable, run, tableSql, type Step } from './step.js';

const NAME = 'add-check';

/**
 * The declared CHECK in two statements. ADD … NOT VALID takes ACCESS EXCLUSIVE only for a catalog change (new
 * and updated rows are checked from then on); VALIDATE then scans the existing rows under SHARE UPDATE EXCLUSIVE,
 * which lets reads and writes continue. One `ADD CONSTRAINT … CHECK` would hold ACCESS EXCLUSIVE for the scan.
 */
export function addCheckStatement(r: ResolvedMigration, check: CheckSpec): PlannedStatement {
  return onTable(
    r,
    NAME,
    'ACCESS EXCLUSIVE',
    `ALTER TABLE ${tableSql(r)} ADD CONSTRAINT ${quoteIdent(check.name)} CHECK ${embed(check.expression)} NOT VALID`,
    `add check "${check.name}" NOT VALID (catalog only; enforced for new writes at once)`,
  );
}

export function validateCheckStatement(r: ResolvedMigration, name: string, step = NAME): PlannedStatement {
  return onTable(
    r,
    step,
    'SHARE UPDATE EXCLUSIVE',
    `ALTER TABLE ${tableSql(r)} VALIDATE CONSTRAINT ${quoteIdent(name)}`,
    `validate "${name}" over existing rows (scans the table; reads and writes continue)`,
  );
}

export function dropCheckStatement(r: ResolvedMigration, name: string, step = NAME): PlannedStatement {
  return onTable(
    r,
    step,
    'ACCESS EXCLUSIVE',
    `ALTER TABLE ${tableSql(r)} DROP CONSTRAINT IF EXISTS ${quoteIdent(name)}`,
    `drop constraint "${name}" (catalog only)`,
  );
}

export const addCheck: Step = {
  name: NAME,
  plan(r) {
    const check = r.migration.newColumn.check;
    return check ? [addCheckStatement(r, check), validateCheckStatement(r, check.name)] : [];
  },
  planRollback(r) {
    const check = r.migration.newColumn.check;
    return check ? [dropCheckStatement(r, check.name)] : [];
  },
  async apply(ctx, r, opts) {
    const check = r.migration.newColumn.check;
    if (!check) return;
    const s = await readConstraint(ctx.knex, r.schema, r.table, check.name);
    if (s.kind === 'foreign') {
      throw new ConflictError('PF_MIGRATION_CONFLICT', `Cannot add the check of "${r.migration.id}": ${s.detail}.`, {
        value: check.name,
        migrationId: r.migration.id,
        hint: 'Name the check explicitly (newColumn.check.name) with a name not used on the table.',
      });
    }
    if (s.kind === 'check' && s.validated) return;
    if (s.kind === 'missing') await run(ctx, r, addCheckStatement(r, check), opts);
    await run(ctx, r, validateCheckStatement(r, check.name), opts);
  },
  async rollback(ctx, r, opts) {
    const check = r.migration.newColumn.check;
    if (!check) return;
    if ((await readConstraint(ctx.knex, r.schema, r.table, check.name)).kind === 'check')
      await run(ctx, r, dropCheckStatement(r, check.name), opts);
  },
};
