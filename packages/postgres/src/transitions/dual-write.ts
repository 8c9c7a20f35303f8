import { ValidationError, type TransitionDecision } from '@phaseflag/core';
import type { ResolvedMigration } from '../catalog/resolved.js';
import { runPreflight, type PreflightResult } from '../operations/preflight.js';
import { dropSync, installSync } from '../operations/steps/phase-steps.js';
import type { TransitionOptions } from '../types.js';
import { refuse, runTransition } from './run.js';
import type { MigrationScope } from './scope.js';

/** expanded → dual-write (after the preflight, with the sync trigger), and back (stop-dual-write). */
export function startDualWrite(
  scope: MigrationScope,
  options: { acceptPreflightFailures?: boolean } & TransitionOptions,
): Promise<TransitionDecision> {
  if (options.acceptPreflightFailures !== undefined && typeof options.acceptPreflightFailures !== 'boolean') {
    throw new ValidationError(
      'PF_INVALID_OPTIONS',
      `acceptPreflightFailures must be a boolean, not ${JSON.stringify(options.acceptPreflightFailures)}.`,
      {
        value: options.acceptPreflightFailures,
        migrationId: scope.id,
        hint: 'Pass acceptPreflightFailures: true to accept the rows the preflight cannot derive.',
      },
    );
  }
  return runTransition(
    scope,
    'dual-write',
    {},
    {
      cause: options.cause,
      before: async (r) => {
        // Before the trigger goes live: rows the expression cannot derive are found now, not by the first
        // application write or the backfill.
        await preflightGate(scope, r, options.acceptPreflightFailures === true);
        if (scope.migration.sync.trigger) await installSync(scope.ctx, r);
      },
    },
  );
}

/** Runs the preflight, stores its result, and refuses dual-write while rows fail to derive, unless accepted. */
async function preflightGate(scope: MigrationScope, r: ResolvedMigration, accept: boolean): Promise<PreflightResult> {
  const result = await runPreflight(scope.ctx, r, { record: accept });
  await scope.store.update(scope.id, { preflight_result: JSON.stringify(result) });
  if (result.failures > 0 && !accept) {
    const first = result.failedRows[0]!;
    await refuse(
      scope,
      'dual-write',
      'expanded',
      `the preflight found ${result.failures} row(s) the backfill expression cannot derive (first key ${JSON.stringify(first.key)}, value ${JSON.stringify(first.oldValue)}: ${first.error})`,
      `Fix those rows or change the expression, or accept them: \`phaseflag dual-write ${scope.id} --accept-preflight-failures\` (API: startDualWrite({ acceptPreflightFailures: true })); accepted rows stay NULL in the new column, are listed by status and block verified until fixed. \`phaseflag plan --preflight\` lists them.`,
      'PF_PREFLIGHT_FAILED',
    );
  }
  return result;
}

export function stopDualWrite(scope: MigrationScope, options: TransitionOptions): Promise<TransitionDecision> {
  return runTransition(
    scope,
    'stop-dual-write',
    {},
    { cause: options.cause, after: async (r) => dropSync(scope.ctx, r) },
  );
}
