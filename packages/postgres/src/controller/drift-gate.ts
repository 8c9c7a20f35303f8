import { CONTROLLER_ATTR, type Action, type Logger } from '@phaseflag/core';
import { driftRefusal } from '../operations/drift/refusal.js';
import type { TransitionCause } from '../types.js';
import type { ControllerEvent } from './events.js';
import type { ActStep } from './perform.js';
import type { Tracked } from './tracked.js';

/**
 * Steps that carry a migration forward. The others move it back (stop dual-write, pause, read old, release a read
 * hold): the levers an operator pulls when something is wrong, never held back by drift.
 */
const ADVANCING: ReadonlySet<ActStep['action']> = new Set([
  'expand',
  'dual-write',
  'backfill',
  'resume',
  'run-backfill',
  'verify',
  'read-new',
  'contract',
]);

export interface DriftGateDeps {
  readonly cause: (why: string) => TransitionCause;
  readonly emit: (event: ControllerEvent) => void;
  readonly logger: Logger;
  readonly now: () => Date;
}

/**
 * Inspects the migration's table just before the controller acts on a step that advances it (not on every poll:
 * passes that find nothing to do never look), and refuses with PF_DRIFT while a blocking difference stands: an
 * event row, a `phaseflag.transition.refused` span with `phaseflag.refusal.code` = PF_DRIFT, one warning and a
 * `refused` controller event, once per distinct refusal. The last inspection goes into the controller's status.
 * True when the step must not run.
 */
export async function refusedForDrift(t: Tracked, step: ActStep, deps: DriftGateDeps): Promise<boolean> {
  if (!ADVANCING.has(step.action)) return false;
  const report = await t.handle.drift();
  t.status = { ...t.status, drift: report };
  if (!report.blocking) return false;
  const action: Action =
    step.action === 'run-backfill' ? 'backfill' : step.action === 'release-reads' ? 'read-new' : step.action;
  const { reason, hint } = driftRefusal(report);
  t.status = {
    ...t.status,
    lastStep: { kind: 'refuse', action, flag: step.flag, from: step.from, code: 'PF_DRIFT', reason, hint },
  };
  const key = `${action}|${reason}`;
  if (t.refused.has(key)) return true;
  t.refused.add(key);
  const cause = deps.cause('PF_DRIFT');
  cause.attributes = { ...cause.attributes, [CONTROLLER_ATTR.refusalCode]: 'PF_DRIFT' };
  cause.detail = { ...cause.detail, code: 'PF_DRIFT', findings: report.findings.filter((f) => f.blocking) };
  await t.handle.recordRefusal(action, step.from, reason, hint, cause, { logger: deps.logger });
  deps.emit({
    kind: 'refused',
    migrationId: t.handle.id,
    action,
    phase: step.from,
    code: 'PF_DRIFT',
    reason,
    hint,
    flag: step.flag ? t.flags.key(step.flag) : null,
    at: deps.now(),
  });
  return true;
}
