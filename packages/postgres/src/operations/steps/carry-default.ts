import { quoteIdent } from '@phaseflag/core';
import type { PlannedStatement } from '../planned-statement.js';
import type { ResolvedMigration } from '../../catalog/resolved.js';
import { regclassText } from '../../sql/text.js';
import { onTable, run, tableSql, type Step } from './step.js';
import { dropTriggerStatement } from './sync-trigger.js';

const NAME = 'carry-default';

/**
 * ACCESS EXCLUSIVE, ≤ lock_timeout per attempt, catalog only: the new column takes the old column's default,
 * derived through the backfill expression (`'free'` → `upper(plan_id)` → `'FREE'`), at contract, in one
 * transaction with the sync trigger's drop and before the old column goes. Not earlier: while the trigger lives,
 * an INSERT that gives only the old column must reach it with the new column NULL ("not given"), or the trigger
 * would keep the default instead of deriving the value. Not later: in between, such an INSERT would fail on the
 * new column's NOT NULL. A default the migration declares wins (it is
 * set by expand); a derived column keeps its source and its trigger, so it needs none.
 */
export function carriedDefault(r: ResolvedMigration): string | null {
  if (r.migration.intent === 'derive' || r.migration.newColumn.default !== undefined) return null;
  return r.oldColumnDefault?.carriedSql ?? null;
}

export function carryDefaultStatement(r: ResolvedMigration, literal: string): PlannedStatement {
  const col = r.migration.newColumn.name;
  return onTable(
    r,
    NAME,
    'ACCESS EXCLUSIVE',
    `${dropTriggerStatement(r).sql};\nALTER TABLE ${tableSql(r)} ALTER COLUMN ${quoteIdent(col)} SET DEFAULT ${literal}`,
    `drop the sync trigger and give "${col}" the old column's default carried over (${r.oldColumnDefault?.sql} → ${literal}), in one transaction (catalog only)`,
  );
}

/**
 * Why contract may not go ahead: the old column has a default that cannot be carried over (nextval(), now(), or one
 * the expression cannot map), the new column has none of its own, and an INSERT that leaves the column out would
 * fail (NOT NULL) or lose its value (the old column dropped). Null when contract may go ahead.
 */
export function defaultCarryRefusal(
  r: ResolvedMigration,
  dropOldColumn: boolean,
): { reason: string; hint: string } | null {
  const m = r.migration;
  const old = r.oldColumnDefault;
  if (m.intent === 'derive' || old == null || old.carriedSql !== null || m.newColumn.default !== undefined) return null;
  if (m.newColumn.nullable && !dropOldColumn) return null;
  const effect = m.newColumn.nullable
    ? `once "${m.oldColumn}" is dropped, an INSERT that leaves the column out would store NULL in "${m.newColumn.name}"`
    : `an INSERT that leaves the column out would fail on "${m.newColumn.name}" NOT NULL`;
  return {
    reason: `"${m.oldColumn}" has DEFAULT ${old.sql}, which cannot be carried over to "${m.newColumn.name}" (${old.notCarriedBecause}): ${effect}`,
    hint:
      `Declare newColumn.default for "${m.newColumn.name}" (a constant), or set a default on it by hand (ALTER TABLE … ALTER COLUMN ${quoteIdent(m.newColumn.name)} SET DEFAULT …)` +
      `${m.newColumn.nullable ? ', or contract without dropping the old column' : ''}.`,
  };
}

export const carryDefault: Step = {
  name: NAME,
  plan: (r) => {
    const literal = carriedDefault(r);
    return literal === null ? [] : [carryDefaultStatement(r, literal)];
  },
  planRollback: () => [],
  async apply(ctx, r, opts) {
    const literal = carriedDefault(r);
    if (literal === null) return;
    const live = (
      await ctx.knex.raw(
        `SELECT 1 FROM pg_catalog.pg_attrdef d JOIN pg_catalog.pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
        WHERE d.adrelid = ?::regclass AND a.attname = ?`,
        [regclassText(r.schema, r.table), r.migration.newColumn.name],
      )
    ).rows as unknown[];
    // A default set already (a previous run, or by hand) stays: the user's choice wins.
    if (live.length > 0) return;
    await run(ctx, r, carryDefaultStatement(r, literal), opts);
  },
  // Contract is irreversible; the default stays with the column.
  rollback: async () => undefined,
};
