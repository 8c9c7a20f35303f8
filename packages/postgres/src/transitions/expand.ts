import type { TransitionDecision } from '@phaseflag/core';
import { applyExpand } from '../operations/steps/phase-steps.js';
import type { TransitionOptions } from '../types.js';
import { runTransition } from './run.js';
import type { MigrationScope } from './scope.js';

/** pending → expanded: the new column online, then its index and check (see phase-steps.ts). */
export function expand(
  scope: MigrationScope,
  options: { signal?: AbortSignal } & TransitionOptions,
): Promise<TransitionDecision> {
  return runTransition(
    scope,
    'expand',
    {},
    {
      cause: options.cause,
      before: async (r, row) => {
        // Remember before the DDL whether this migration creates the column, so that a crash between the two
        // cannot make rollback think the user made it (and leave it behind) — or drop a column the user made.
        if (!r.newColumnExists && !row.created_new_column)
          await scope.store.update(scope.id, { created_new_column: true });
        await applyExpand(scope.ctx, r, options.signal);
      },
    },
  );
}
