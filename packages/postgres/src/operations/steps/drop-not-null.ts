import { readColumn } from '../../catalog/state.js';
import { dropNotNullStatement, enforceNotNull, notNullHelperName, setNotNullStatements } from './set-not-null.js';
import { run, type Step } from './step.js';

const NAME = 'drop-not-null';

/**
 * At contract the application stops writing the old column; if it is NOT NULL, every insert that leaves it out
 * would then fail. So, while every writer still fills it, the constraint goes (ACCESS EXCLUSIVE, catalog only).
 * Rollback restores it the online way (validated helper check, then SET NOT NULL), which needs the old column
 * to be filled again in every row.
 */
export const dropNotNull: Step = {
  name: NAME,
  plan: (r) => (r.oldColumn?.notNull ? [dropNotNullStatement(r, r.oldColumn.name, NAME)] : []),
  planRollback: (r) =>
    r.oldColumn === null ? [] : setNotNullStatements(r, r.oldColumn.name, notNullHelperName(r, 'old'), NAME),
  async apply(ctx, r, opts) {
    const old = r.migration.oldColumn;
    if (old === null) return;
    const live = await readColumn(ctx.knex, r.schema, r.table, old);
    if (live?.notNull) await run(ctx, r, dropNotNullStatement(r, old, NAME), opts);
  },
  async rollback(ctx, r, opts) {
    const old = r.migration.oldColumn;
    // Only a column this step relaxed goes back to NOT NULL; whether it was is known from the plan-time catalog
    // only before the step ran, so the engine calls this only for migrations whose old column was NOT NULL.
    if (old === null) return;
    await enforceNotNull(ctx, r, old, notNullHelperName(r, 'old'), NAME, opts);
  },
};
