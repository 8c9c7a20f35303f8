import { SpanStatusCode } from '@opentelemetry/api';
import {
  ATTR,
  ConflictError,
  GuardRefusedError,
  METRIC,
  SPAN,
  type Action,
  type Logger,
  type Phase,
  type PhaseflagError,
} from '@phaseflag/core';
import type { ExecutorContext } from '../context.js';
import type { TransitionCause } from '../types.js';
import type { PostgresStateStore } from '../store/state-store.js';

/** The error code a refused request throws with (decideNext's own refusal vocabulary is core's ControllerRefusalCode). */
export type RefusalErrorCode =
  | 'PF_CONFIRMATION_REQUIRED'
  | 'PF_IRREVERSIBLE'
  | 'PF_MIGRATION_CONFLICT'
  | 'PF_DERIVED_SOURCE_KEPT'
  | 'PF_DEFAULT_NOT_CARRIED'
  | 'PF_PREFLIGHT_FAILED';

export interface Refusal {
  readonly migrationId: string;
  readonly action: Action;
  readonly phase: Phase;
  readonly reason: string;
  readonly hint: string;
  readonly cause?: TransitionCause;
}

/**
 * Records a refusal: the refusal metric, an event row (its detail carries the hint and the cause's detail) and
 * one warning; with `span`, also a `phaseflag.transition.refused` span with the reason, the cause's attributes
 * and its links. Inside a transition the transition's own span is renamed instead, so no second span is made.
 */
export async function recordRefusal(
  ctx: ExecutorContext,
  store: PostgresStateStore,
  r: Refusal,
  options: { span: boolean; logger?: Logger; tolerateStoreFailure?: boolean },
): Promise<void> {
  const span = options.span
    ? ctx.tracer.startSpan(SPAN.refused, { links: r.cause?.links ?? [], attributes: r.cause?.attributes ?? {} })
    : undefined;
  span?.setAttributes({
    [ATTR.migrationId]: r.migrationId,
    [ATTR.action]: r.action,
    [ATTR.fromPhase]: r.phase,
    [ATTR.reason]: r.reason,
    [ATTR.actor]: ctx.actor,
  });
  span?.setStatus({ code: SpanStatusCode.ERROR, message: r.reason });
  try {
    ctx.meter.createCounter(METRIC.refusals).add(1, { [ATTR.action]: r.action });
    const recorded = store.recordEvent({
      migration_id: r.migrationId,
      kind: 'refused',
      action: r.action,
      from_phase: r.phase,
      to_phase: null,
      reason: r.reason,
      detail: { hint: r.hint, ...r.cause?.detail },
    });
    await (options.tolerateStoreFailure ? recorded.catch(() => undefined) : recorded);
    (options.logger ?? ctx.logger).warn(`phaseflag: ${r.migrationId}: ${r.action} refused: ${r.reason}`, {
      migrationId: r.migrationId,
      action: r.action,
      phase: r.phase,
      hint: r.hint,
      ...r.cause?.detail,
    });
  } finally {
    span?.end();
  }
}

/** The error a refused request throws: what was refused, why, and the hint. */
export function refusalError(r: Refusal, code?: RefusalErrorCode): PhaseflagError {
  const message = `Cannot ${r.action} "${r.migrationId}": ${r.reason}.`;
  if (code === 'PF_MIGRATION_CONFLICT')
    return new ConflictError(code, message, { value: { phase: r.phase }, hint: r.hint, migrationId: r.migrationId });
  return new GuardRefusedError(message, {
    from: r.phase,
    action: r.action,
    value: { phase: r.phase },
    hint: r.hint,
    migrationId: r.migrationId,
    code,
  });
}
