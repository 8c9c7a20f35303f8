import { isInFlight, writesBoth, type Migration, type Phase } from '@phaseflag/core';

/**
 * What a phase implies about the catalog: what the transitions that led to it have built or removed. A step that
 * has not run yet implies nothing (expand failed half-way leaves the migration `pending`, and running expand again
 * finishes the job), so a difference the migration's own next step would put right is never drift.
 *
 * Timing: dual-write installs the trigger before the phase changes; contract's drops and NOT NULL, and rollback's
 * removals, run after the phase change (and a grace period), so `contracted` and `rolled-back` imply nothing about
 * what those steps remove until the state store says they finished (the old column's drop is recorded).
 */
const FOREIGN_KEY: readonly Phase[] = ['verified', 'read-new', 'contracted'];

export interface PhaseExpectations {
  /** The new column, its index and its check exist (expand ran). */
  readonly newColumn: boolean;
  /** The sync trigger and its function exist, enabled (dual-write installed them; a derived column keeps them). */
  readonly syncTrigger: boolean;
  /** The foreign key exists, validated (verify added it). */
  readonly foreignKey: boolean;
  /** The new column is NOT NULL (contract sets it after its grace period), unless declared nullable. */
  readonly newColumnNotNull: boolean;
  /** The old column: there, gone (contract dropped it, as the store records), or either. */
  readonly oldColumn: 'present' | 'absent' | 'either';
}

export function expectationsOf(
  m: Migration,
  phase: Phase,
  options: { syncTriggerApplies: boolean; oldColumnDropped: boolean },
): PhaseExpectations {
  const contracted = phase === 'contracted';
  return {
    newColumn: isInFlight(phase) || phase === 'contracted',
    syncTrigger: options.syncTriggerApplies && (writesBoth(phase) || (contracted && m.intent === 'derive')),
    foreignKey: m.newColumn.references !== null && FOREIGN_KEY.includes(phase),
    newColumnNotNull: contracted && !m.newColumn.nullable,
    oldColumn:
      m.oldColumn === null ? 'either' : options.oldColumnDropped ? 'absent' : contracted ? 'either' : 'present',
  };
}
