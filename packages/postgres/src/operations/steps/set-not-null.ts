import { objectName, quoteIdent } from '@phaseflag/core';
import { readColumn, readConstraint } from '../../catalog/state.js';
import type { ExecutorContext } from '../../context.js';
import type { PlannedStatement } from '../planned-statement.js';
import type { ResolvedMigration } from '../../catalog/resolved.js';
import { dropCheckStatement, validateCheckStatement } from './add-check.js';
import { onTable, run, tableSql, type Step, type StepOptions } from './step.js';

const NAME = 'set-not-null';

/**
 * `ALTER COLUMN … SET NOT NULL` alone scans the whole table under ACCESS EXCLUSIVE, blocking every read and
 * write for the scan. Instead: a helper `CHECK (col IS NOT NULL) NOT VALID` (catalog only), VALIDATE it under
 * SHARE UPDATE EXCLUSIVE (the scan, with traffic flowing), then SET NOT NULL, which Postgres ≥ 12 proves from the
 * validated check without scanning, and drop the helper in the same short transaction.
 */
export function notNullHelperName(r: ResolvedMigration, which: 'new' | 'old'): string {
  return objectName('pf_nn', r.migration.id, which === 'old' ? 'old' : '');
}

export function setNotNullStatements(
  r: ResolvedMigration,
  column: string,
  helper: string,
  step = NAME,
): PlannedStatement[] {
  const t = tableSql(r);
  const scanNote =
    r.serverVersion >= 120000
      ? 'no scan: the validated check proves it'
      : 'Postgres < 12 scans the table here despite the check';
  return [
    onTable(
      r,
      step,
      'ACCESS EXCLUSIVE',
      `ALTER TABLE ${t} ADD CONSTRAINT ${quoteIdent(helper)} CHECK (${quoteIdent(column)} IS NOT NULL) NOT VALID`,
      `add helper check "${helper}" NOT VALID (catalog only)`,
    ),
    validateCheckStatement(r, helper, step),
    onTable(
      r,
      step,
      'ACCESS EXCLUSIVE',
      `ALTER TABLE ${t} ALTER COLUMN ${quoteIdent(column)} SET NOT NULL;\nALTER TABLE ${t} DROP CONSTRAINT ${quoteIdent(helper)}`,
      `set "${column}" NOT NULL (${scanNote}) and drop the helper check, in one transaction`,
    ),
  ];
}

export function dropNotNullStatement(r: ResolvedMigration, column: string, step: string): PlannedStatement {
  return onTable(
    r,
    step,
    'ACCESS EXCLUSIVE',
    `ALTER TABLE ${tableSql(r)} ALTER COLUMN ${quoteIdent(column)} DROP NOT NULL`,
    `drop NOT NULL on "${column}" (catalog only)`,
  );
}

/** Resumable: each statement runs only if the catalog shows it has not taken effect yet. */
export async function enforceNotNull(
  ctx: ExecutorContext,
  r: ResolvedMigration,
  column: string,
  helper: string,
  step: string,
  opts?: StepOptions,
): Promise<void> {
  const [add, validate, set] = setNotNullStatements(r, column, helper, step) as [
    PlannedStatement,
    PlannedStatement,
    PlannedStatement,
  ];
  const live = await readColumn(ctx.knex, r.schema, r.table, column);
  const check = await readConstraint(ctx.knex, r.schema, r.table, helper);
  if (live?.notNull) {
    // Done before; a helper can only remain if somebody interrupted a hand-run sequence.
    if (check.kind === 'check') await run(ctx, r, dropCheckStatement(r, helper, step), opts);
    return;
  }
  if (check.kind === 'missing') await run(ctx, r, add, opts);
  if (!(check.kind === 'check' && check.validated)) await run(ctx, r, validate, opts);
  await run(ctx, r, set, opts);
}

export async function relaxNotNull(
  ctx: ExecutorContext,
  r: ResolvedMigration,
  column: string,
  helper: string,
  step: string,
  opts?: StepOptions,
): Promise<void> {
  if ((await readColumn(ctx.knex, r.schema, r.table, column))?.notNull)
    await run(ctx, r, dropNotNullStatement(r, column, step), opts);
  if ((await readConstraint(ctx.knex, r.schema, r.table, helper)).kind === 'check')
    await run(ctx, r, dropCheckStatement(r, helper, step), opts);
}

/** NOT NULL on the new column, at contract, when it is declared not nullable. */
export const setNotNull: Step = {
  name: NAME,
  plan: (r) =>
    r.migration.newColumn.nullable
      ? []
      : setNotNullStatements(r, r.migration.newColumn.name, notNullHelperName(r, 'new')),
  planRollback: (r) =>
    r.migration.newColumn.nullable ? [] : [dropNotNullStatement(r, r.migration.newColumn.name, NAME)],
  async apply(ctx, r, opts) {
    if (r.migration.newColumn.nullable) return;
    await enforceNotNull(ctx, r, r.migration.newColumn.name, notNullHelperName(r, 'new'), NAME, opts);
  },
  rollback: (ctx, r, opts) => relaxNotNull(ctx, r, r.migration.newColumn.name, notNullHelperName(r, 'new'), NAME, opts),
};
