import { CONTROLLER_ATTR, type Logger, type NextStep } from '@phaseflag/core';
import { ADVANCING_STEPS, driftRefusal } from '../operations/drift/refusal.js';
import type { TransitionCause } from '../types.js';
import type { ControllerEvent } from './events.js';
import type { ActStep } from './perform.js';
import type { Tracked } from './tracked.js';

/** A refusal as decideNext() gives it, or as the drift gate makes it (code PF_DRIFT). */
export type RefuseStep = Extract<NextStep, { kind: 'refuse' }>;

export interface RefusalDeps {
  /** The cause of what the step's flag asks for, with `why` in its detail. */
  readonly cause: (why: string) => TransitionCause;
  readonly emit: (event: ControllerEvent) => void;
  readonly logger: Logger;
  readonly now: () => Date;
}

/**
 * Records a refusal once until the situation changes (a refusal is logged, traced and shown, never silent): an
 * event row, a `phaseflag.transition.refused` span carrying `phaseflag.refusal.code`, one warning, and a `refused`
 * controller event.
 */
export async function reportRefusal(
  t: Tracked,
  step: RefuseStep,
  deps: RefusalDeps,
  detail: Record<string, unknown> = {},
): Promise<void> {
  const key = `${step.action}|${step.reason}`;
  if (t.refused.has(key)) return;
  t.refused.add(key);
  const cause = deps.cause(step.code);
  cause.attributes = { ...cause.attributes, [CONTROLLER_ATTR.refusalCode]: step.code };
  cause.detail = { ...cause.detail, ...detail };
  await t.handle.recordRefusal(step.action, step.from, step.reason, step.hint, cause, { logger: deps.logger });
  deps.emit({
    kind: 'refused',
    migrationId: t.handle.id,
    action: step.action,
    phase: step.from,
    code: step.code,
    reason: step.reason,
    hint: step.hint,
    flag: step.flag ? t.flags.key(step.flag) : null,
    at: deps.now(),
  });
}

/**
 * Inspects the migration's table just before the controller acts on a step that advances it (not on every poll:
 * passes with nothing to do never look), and refuses with PF_DRIFT while a blocking difference stands. The last
 * inspection goes into the controller's status. True when the step must not run.
 */
export async function refusedForDrift(t: Tracked, step: ActStep, deps: RefusalDeps): Promise<boolean> {
  if (!ADVANCING_STEPS.has(step.action)) return false;
  const report = await t.handle.drift();
  t.status = { ...t.status, drift: report };
  if (!report.blocking) return false;
  const action =
    step.action === 'run-backfill' ? 'backfill' : step.action === 'release-reads' ? 'read-new' : step.action;
  const { reason, hint } = driftRefusal(report);
  const refusal: RefuseStep = {
    kind: 'refuse',
    action,
    flag: step.flag,
    from: step.from,
    code: 'PF_DRIFT',
    reason,
    hint,
  };
  t.status = { ...t.status, lastStep: refusal };
  await reportRefusal(t, refusal, deps, { code: 'PF_DRIFT', findings: report.findings.filter((f) => f.blocking) });
  return true;
}
