import type { TransitionDecision } from '@phaseflag/core';
import { resetBackfill } from '../operations/backfill/ranges.js';
import { applyRollback } from '../operations/steps/phase-steps.js';
import { ROLLBACK_RESETS } from '../store/recording-sql.js';
import type { TransitionOptions } from '../types.js';
import { forbiddenChanges, recordedMigration } from './definition.js';
import { grace, runTransition } from './run.js';
import { withMigration, type MigrationScope } from './scope.js';

/** Any phase before contracted → rolled-back: reads and writes go back at once, the schema after the grace period. */
export async function rollback(
  scope: MigrationScope,
  options: { dropNewColumn?: boolean; signal?: AbortSignal } & TransitionOptions,
): Promise<TransitionDecision> {
  // Rollback undoes what the recorded declaration created, even when the declared one has changed since.
  const row = await scope.store.get(scope.id);
  if (row !== null && forbiddenChanges(scope, row).length > 0) {
    const recorded = withMigration(scope, recordedMigration(scope, row));
    scope.ctx.logger.info(
      `phaseflag: ${scope.id}: rolling back from the recorded declaration (the declared one changed: ${forbiddenChanges(scope, row).join('; ')})`,
      { migrationId: scope.id },
    );
    return rollback(recorded, options);
  }
  return runTransition(
    scope,
    'rollback',
    {},
    {
      cause: options.cause,
      extra: { ...ROLLBACK_RESETS },
      after: async (r, row) => {
        await grace(scope);
        await applyRollback(scope.ctx, r, {
          dropNewColumn: (options.dropNewColumn ?? true) && row.created_new_column,
          signal: options.signal,
        });
        await resetBackfill(scope.ctx, scope.id);
        if ((options.dropNewColumn ?? true) && row.created_new_column)
          await scope.store.update(scope.id, { created_new_column: false });
      },
    },
  );
}
