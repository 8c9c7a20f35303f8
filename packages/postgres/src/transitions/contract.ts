import type { TransitionDecision } from '@phaseflag/core';
import { applyContractAfter, applyContractBefore } from '../operations/steps/phase-steps.js';
import { defaultCarryRefusal } from '../operations/steps/carry-default.js';
import type { TransitionOptions } from '../types.js';
import { grace, refuse, runTransition } from './run.js';
import type { MigrationScope } from './scope.js';

/** read-new → contracted: what must hold before the phase change, and the drops after the grace period. */
export async function contract(
  scope: MigrationScope,
  options: { confirm?: boolean; dropOldColumn?: boolean; signal?: AbortSignal } & TransitionOptions,
): Promise<TransitionDecision> {
  const dropOldColumn = options.dropOldColumn === true;
  if (dropOldColumn && scope.migration.intent === 'derive') {
    const phase = (await scope.store.get(scope.id))?.phase ?? 'pending';
    await refuse(
      scope,
      'contract',
      phase,
      `"${scope.migration.newColumn.name}" is derived from "${scope.migration.oldColumn}", which therefore stays`,
      "Contract without dropOldColumn (CLI: without --drop-old-column). To replace the column instead, declare intent: 'replace' in a new migration.",
      'PF_DERIVED_SOURCE_KEPT',
    );
  }
  return runTransition(
    scope,
    'contract',
    { confirmed: options.confirm === true },
    {
      cause: options.cause,
      // The old column may be NOT NULL: make it nullable while every writer still fills it, so that writers
      // that stop writing it after the phase change cannot fail. First, refuse when the old column's default would
      // be lost (see carry-default.ts): nothing has changed yet.
      before: async (r, row) => {
        const lost = defaultCarryRefusal(r, dropOldColumn);
        if (lost) await refuse(scope, 'contract', row.phase, lost.reason, lost.hint, 'PF_DEFAULT_NOT_CARRIED');
        await applyContractBefore(scope.ctx, r, options.signal);
      },
      after: async (r) => {
        await grace(scope);
        await applyContractAfter(scope.ctx, r, { dropOldColumn, signal: options.signal });
      },
    },
  );
}
