import { SPAN, ATTR, ValidationError, type TransitionDecision } from '@phaseflag/core';
import type { MigrationScope } from './scope.js';
import type { TransitionOptions } from '../types.js';
import { withSpan } from '../telemetry/with-span.js';
import { runTransition } from './run.js';

/**
 * The emergency lever and its release. `readOld()` moves read-new → verified, where every request reads the old
 * column whatever the read-new flag says (core's read rule). By hand it also records a hold
 * (`migrations.reads_held_at`, set in the transition's own UPDATE): a controller then refuses to move back to
 * read-new while the flag is still on, and releases the hold once it sees the flag off. `readNew()` by hand is
 * the other way to say "read new again": it clears the hold in its own transition.
 */

export interface ReadOldOptions extends TransitionOptions {
  /**
   * Hold reads on the old column until read-new is asked for again (default true). A controller passes false when
   * it moves back because the read-new flag is off: the flag itself is the hold then.
   */
  hold?: boolean;
}

export function readOld(scope: MigrationScope, options: ReadOldOptions): Promise<TransitionDecision> {
  if (options.hold !== undefined && typeof options.hold !== 'boolean') {
    throw new ValidationError(
      'PF_INVALID_OPTIONS',
      `readOld: hold must be a boolean, got ${JSON.stringify(options.hold)}.`,
      {
        value: options.hold,
        migrationId: scope.id,
        hint: 'Pass hold: false only when a flag keeps reads on the old column by itself.',
      },
    );
  }
  const hold = options.hold ?? true;
  return runTransition(
    scope,
    'read-old',
    {},
    { cause: options.cause, extra: { reads_held_at: hold ? scope.ctx.knex.fn.now() : null } },
  );
}

export function readNew(scope: MigrationScope, options: TransitionOptions): Promise<TransitionDecision> {
  return runTransition(scope, 'read-new', {}, { cause: options.cause, extra: { reads_held_at: null } });
}

/**
 * Clears the hold read-old placed, if it still is the one seen at `version` (a read-old after that is a new
 * hold and stays). Recorded as an event and a span; returns whether a hold was released.
 */
export function releaseReadHold(
  scope: MigrationScope,
  options: TransitionOptions & { version: number },
): Promise<boolean> {
  const { ctx, store } = scope;
  const cause = options.cause;
  return withSpan(
    ctx.tracer,
    SPAN.readsRelease,
    { links: cause?.links ?? [], attributes: cause?.attributes ?? {} },
    async (span) => {
      span.setAttributes({ [ATTR.migrationId]: scope.id, [ATTR.action]: 'release-reads', [ATTR.actor]: ctx.actor });
      const released = await ctx.knex.transaction(async (trx) => {
        const n = await trx
          .withSchema(ctx.stateSchema)
          .table('migrations')
          .where({ id: scope.id, version: options.version })
          .whereNotNull('reads_held_at')
          .update({ reads_held_at: null, updated_by: ctx.actor, updated_at: trx.fn.now() });
        if (n !== 1) return false;
        await store.recordEvent(
          {
            migration_id: scope.id,
            kind: 'note',
            action: 'release-reads',
            from_phase: null,
            to_phase: null,
            reason: 'the hold read-old placed on reads is released: the read-new flag drives reads again',
            detail: cause?.detail ?? null,
          },
          trx,
        );
        return true;
      });
      if (released)
        ctx.logger.info(`phaseflag: ${scope.id}: read-old hold released; the read-new flag drives reads again`, {
          migrationId: scope.id,
        });
      return released;
    },
  );
}
