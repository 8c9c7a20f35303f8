import { GuardRefusedError, type Action } from '@phaseflag/core';
import type { DriftReport } from './types.js';

/**
 * The controller's steps that carry a migration forward, which drift holds back. The others move it back (stop
 * dual-write, pause, read old, release a read hold): the levers an operator pulls when something is wrong.
 */
export const ADVANCING_STEPS: ReadonlySet<string> = new Set([
  'expand',
  'dual-write',
  'backfill',
  'resume',
  'run-backfill',
  'verify',
  'read-new',
  'contract',
]);

/**
 * Why the controller declines to move a drifted migration on (PF_DRIFT): each blocking difference in a few words,
 * and where to read the repairs.
 */
export function driftRefusal(report: DriftReport): { reason: string; hint: string } {
  const blocking = report.findings.filter((f) => f.blocking);
  const shown = blocking.slice(0, 3).map((f) => `${f.object} "${f.name}" ${f.actual} (expected ${f.expected})`);
  const more = blocking.length > shown.length ? `; and ${blocking.length - shown.length} more` : '';
  return {
    reason: `table ${report.table} drifted from what phase "${report.phase}" implies: ${shown.join('; ')}${more}`,
    hint: `\`phaseflag drift ${report.migrationId}\` shows each difference and its repair; the controller moves on once the catalog matches (checked before each step).`,
  };
}

/** The same refusal as an error, for a caller that asked to be stopped by drift (`handle.assertNoDrift()`). */
export function driftError(report: DriftReport, action: Action): GuardRefusedError {
  const { reason, hint } = driftRefusal(report);
  return new GuardRefusedError(`Cannot ${action} "${report.migrationId}": ${reason}.`, {
    code: 'PF_DRIFT',
    from: report.phase,
    action,
    value: report.findings.filter((f) => f.blocking),
    hint,
    migrationId: report.migrationId,
  });
}
