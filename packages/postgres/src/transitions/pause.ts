import type { TransitionDecision } from '@phaseflag/core';
import type { TransitionOptions } from '../types.js';
import { runTransition } from './run.js';
import type { MigrationScope } from './scope.js';

/** backfilling → paused: a running runner stops after its current batch (it checks the phase in every batch). */
export function pause(scope: MigrationScope, options: TransitionOptions): Promise<TransitionDecision> {
  return runTransition(scope, 'pause', {}, { cause: options.cause });
}

/** paused → backfilling: the next run (a controller's runner, `backfill()`) carries on after the last batch. */
export function resume(scope: MigrationScope, options: TransitionOptions): Promise<TransitionDecision> {
  return runTransition(scope, 'resume', {}, { cause: options.cause });
}
