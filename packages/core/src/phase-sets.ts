import type { Phase } from './phases.js';

/** Phases in which the new column exists and writers must keep both columns right. */
export function writesBoth(phase: Phase): boolean {
  return (
    phase === 'dual-write' ||
    phase === 'backfilling' ||
    phase === 'paused' ||
    phase === 'backfilled' ||
    phase === 'verified' ||
    phase === 'read-new'
  );
}

/** The migration has not ended: it holds its columns against other migrations. */
export function isInFlight(phase: Phase): boolean {
  return phase !== 'pending' && phase !== 'contracted' && phase !== 'rolled-back';
}
