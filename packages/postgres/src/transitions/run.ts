import {
  ATTR,
  decideTransition,
  METRIC,
  SPAN,
  type Action,
  type GuardFacts,
  type Phase,
  type TransitionDecision,
} from '@phaseflag/core';
import type { Knex } from 'knex';
import { resolveScope, type MigrationScope } from './scope.js';
import type { AppliedTransition, TransitionCause } from '../types.js';
import { recordRefusal, refusalError, type RefusalErrorCode } from './refusals.js';
import type { ResolvedMigration } from '../catalog/resolved.js';
import type { MigrationRow } from '../store/rows.js';
import { withSessionLock } from '../driver/advisory.js';
import { withSpan } from '../telemetry/with-span.js';
import { guardFacts } from './facts.js';
import { registerResolved } from './register.js';

/** What one transition does around its phase change, and why it happens. */
export interface TransitionEffects {
  /** DDL that must be in place before the phase changes (run under the step lock, after the guard allowed it). */
  before?: (r: ResolvedMigration, row: MigrationRow) => Promise<void>;
  /** What follows the committed phase change (drops after the grace period). */
  after?: (r: ResolvedMigration, row: MigrationRow) => Promise<void>;
  /** Columns of the migration row set together with the phase. */
  extra?: Record<string, unknown>;
  /**
   * Read inside the phase change's own transaction, just before it: columns to set with the phase, facts for the
   * event's detail and the span (verify records the primary's WAL position here).
   */
  stamp?: (trx: Knex.Transaction) => Promise<TransitionStamp>;
  /** Why the transition happens, stored with its event (e.g. the row a failed backfill stopped on). */
  reason?: string;
  cause?: TransitionCause;
}

/** What a transition's `stamp` read in its transaction. */
export interface TransitionStamp {
  readonly extra?: Record<string, unknown>;
  readonly detail?: Record<string, unknown>;
  readonly attributes?: Record<string, string | number | boolean>;
}

/**
 * One transition: under this migration's step lock, read the facts, decide with the guard, apply the DDL that
 * must come before the phase change, record the change (compare-and-set, event, NOTIFY) and apply what must
 * come after. Each allowed and each refused transition is recorded and is a span.
 */
export function runTransition(
  scope: MigrationScope,
  action: Action,
  extraFacts: Partial<GuardFacts> = {},
  effects: TransitionEffects = {},
): Promise<TransitionDecision> {
  const { ctx, store } = scope;
  const cause = effects.cause;
  return withSpan(
    ctx.tracer,
    SPAN.transition,
    { links: cause?.links ?? [], attributes: cause?.attributes ?? {} },
    async (span) => {
      span.setAttributes({ [ATTR.migrationId]: scope.id, [ATTR.action]: action, [ATTR.actor]: ctx.actor });
      return withSessionLock(ctx, 'step', scope.id, async () => {
        const r = await resolveScope(scope);
        // schema.table as the catalog resolved it, like every other span of the migration (backfill, verify, DDL).
        span.setAttribute(ATTR.table, `${r.schema}.${r.table}`);
        const row = await registerResolved(scope, r);
        const facts = await guardFacts(scope, row, r, extraFacts);
        const decision = decideTransition(action, facts);
        span.setAttributes({ [ATTR.fromPhase]: decision.from, [ATTR.toPhase]: decision.to });
        if (!decision.allowed) {
          span.updateName(SPAN.refused);
          span.setAttribute(ATTR.reason, decision.reason);
          const code =
            decision.from === 'contracted'
              ? 'PF_IRREVERSIBLE'
              : action === 'contract' && decision.from === 'read-new' && !facts.confirmed
                ? 'PF_CONFIRMATION_REQUIRED'
                : action === 'expand' && facts.conflicts.length > 0
                  ? 'PF_MIGRATION_CONFLICT'
                  : undefined;
          await refuseRecorded(scope, action, decision.from, decision.reason, decision.hint, code, cause);
        }
        await effects.before?.(r, row);
        await ctx.knex.transaction(async (trx) => {
          const stamp = (await effects.stamp?.(trx)) ?? {};
          if (stamp.attributes) span.setAttributes(stamp.attributes);
          const detail = cause?.detail || stamp.detail ? { ...cause?.detail, ...stamp.detail } : undefined;
          return store.recordTransition(trx, {
            id: scope.id,
            from: decision.from,
            to: decision.to,
            version: row.version,
            action,
            extra: { ...effects.extra, ...stamp.extra },
            detail,
            reason: effects.reason,
          });
        });
        ctx.meter.createCounter(METRIC.transitions).add(1, { [ATTR.action]: action });
        ctx.logger.info(`phaseflag: ${scope.id}: ${decision.from} → ${decision.to}`, { migrationId: scope.id, action });
        announce(scope, cause, { action, from: decision.from, to: decision.to, at: new Date(ctx.clock.now()) });
        await effects.after?.(await resolveScope(scope), row);
        return decision;
      });
    },
  );
}

/** Refuses a request decided outside a transition: recorded with a span of its own, then thrown. */
export async function refuse(
  scope: MigrationScope,
  action: Action,
  phase: Phase,
  reason: string,
  hint: string,
  code?: RefusalErrorCode,
): Promise<never> {
  const refusal = { migrationId: scope.id, action, phase, reason, hint };
  await recordRefusal(scope.ctx, scope.store, refusal, { span: true, tolerateStoreFailure: true });
  throw refusalError(refusal, code);
}

/** Waits until every service instance has seen the phase change before a destructive step. */
export async function grace(scope: MigrationScope): Promise<void> {
  if (scope.graceMs > 0) await scope.ctx.clock.sleep(scope.graceMs);
}

/** The phase change is committed: a listener's bug must not skip what follows it (contract's drops). */
function announce(scope: MigrationScope, cause: TransitionCause | undefined, applied: AppliedTransition): void {
  try {
    cause?.onApplied?.(applied);
  } catch (error) {
    scope.ctx.logger.error(`phaseflag: ${scope.id}: onApplied threw: ${(error as Error)?.message ?? error}`, {
      migrationId: scope.id,
    });
  }
}

/** Records a refusal seen inside a transition span (which already carries its name and reason). */
async function refuseRecorded(
  scope: MigrationScope,
  action: Action,
  phase: Phase,
  reason: string,
  hint: string,
  code?: RefusalErrorCode,
  cause?: TransitionCause,
): Promise<never> {
  const refusal = { migrationId: scope.id, action, phase, reason, hint, cause };
  await recordRefusal(scope.ctx, scope.store, refusal, { span: false });
  throw refusalError(refusal, code);
}
