import { isPhaseflagError, type NextStep } from '@phaseflag/core';
import type { BackfillOptions, TransitionCause } from '../types.js';
import type { ControlledMigration } from './types.js';

/** A step `decideNext()` gives the controller to perform. */
export type ActStep = Extract<NextStep, { kind: 'act' }>;

/** What follows a performed step: start the background backfill runner, ask for another pass at once. */
export interface StepFollowUp {
  readonly startRunner: boolean;
  readonly again: boolean;
}

export interface PerformOptions {
  readonly signal: AbortSignal;
  readonly cause: TransitionCause;
  /** The phase version the pass read (releasing a read hold compares it). */
  readonly version: number;
  /** The controller's `dropOldColumn` option. */
  readonly dropOldColumn: boolean;
  /** The controller's batch settings for the backfills it starts (default: the migration's). */
  readonly batch: BackfillOptions['batch'];
}

/**
 * Performs one step through the migration's handle: the same request a person would make, behind the same guards.
 */
export async function performStep(
  h: ControlledMigration,
  step: ActStep,
  { signal, cause, version, dropOldColumn, batch }: PerformOptions,
): Promise<StepFollowUp> {
  switch (step.action) {
    case 'expand':
      await h.expand({ signal, cause });
      break;
    case 'dual-write':
      await h.startDualWrite({ cause });
      break;
    case 'stop-dual-write':
      await h.stopDualWrite({ cause });
      break;
    case 'pause':
      await h.pause({ cause });
      break;
    case 'read-new':
      await h.readNew({ cause });
      break;
    // The flag is off: it keeps reads old by itself, so no hold (a hold is for readOld() by hand).
    case 'read-old':
      await h.readOld({ cause, hold: false });
      break;
    case 'release-reads':
      await h.releaseReadHold({ cause, version });
      break;
    // A derived column's source stays: dropOldColumn applies to replacements only.
    case 'contract':
      await h.contract({
        confirm: true,
        dropOldColumn: dropOldColumn && h.migration.intent !== 'derive',
        cause,
      });
      break;
    case 'backfill':
    case 'resume':
      await h.startBackfill({ cause, batch });
      return { startRunner: true, again: true };
    case 'run-backfill':
      return { startRunner: true, again: false }; // the runner asks for the next pass when it ends
    case 'verify':
      try {
        await h.verify({ signal, cause });
      } catch (error) {
        // A dirty verify is recorded (event, span, warning) by the engine; decideNext waits for a human then.
        if (!isPhaseflagError(error, 'PF_VERIFY_FAILED')) throw error;
        return { startRunner: false, again: false };
      }
      break;
  }
  return { startRunner: false, again: true };
}
