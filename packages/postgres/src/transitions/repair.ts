import { ATTR, METRIC, SPAN, isPhaseflagError } from '@phaseflag/core';
import type { MigrationScope } from './scope.js';
import type { BackfillOptions, BackfillRun } from '../types.js';
import { withSpan } from '../telemetry/with-span.js';
import { runBackfill } from './backfill.js';
import { resume } from './pause.js';
import { refuse, runTransition } from './run.js';
import { verify } from './verify.js';
import type { VerifyResult } from '../operations/verify.js';
import { prepareBackfill } from '../operations/backfill/ranges.js';

export interface RepairResult {
  /** Rows whose new column differed from the expression and were re-derived. */
  readonly rowsRepaired: number;
  /** Rows the repair examined (every row up to the highest key when it started). */
  readonly rowsScanned: number;
  readonly backfill: BackfillRun;
  /** The verify that followed; null when the repair did not complete (aborted, paused, rolled back). */
  readonly verify: VerifyResult | null;
}

/**
 * After a failed verify, or shadow reads that found rows that differ in verified: backfilled (or verified) →
 * backfilling (action `repair`) over fresh key ranges bounded now, then the
 * backfill machinery walks the table again. Its UPDATE only writes rows whose new column IS DISTINCT FROM the
 * expression, so exactly the rows that differ are re-derived (by key, in batches, each a span). On completion the
 * phase moves to backfilled and verify runs; a clean one moves it to verified. A repair cut short resumes like
 * any backfill (`backfill()`, or a controller's runner).
 */
export async function repair(
  scope: MigrationScope,
  options: BackfillOptions & { verifyBatchSize?: number },
): Promise<RepairResult> {
  const { ctx, store } = scope;
  return withSpan(ctx.tracer, SPAN.repair, { attributes: { [ATTR.migrationId]: scope.id } }, async (span) => {
    const row = await store.get(scope.id);
    // Backfilling or paused with a dirty verify on record can only be a repair that was cut short or paused
    // (rollback clears the verify): carry on where it stopped.
    const resuming =
      (row?.phase === 'backfilling' || row?.phase === 'paused') &&
      row.verify_result !== null &&
      !row.verify_result.clean;
    if (resuming && row?.phase === 'paused') {
      await resume(scope, { cause: options.cause });
    } else if (!resuming && row?.phase !== 'backfilled' && row?.phase !== 'verified') {
      // From verified, the guard allows it when shadow reads found rows that differ (written since the verify).
      await refuse(
        scope,
        'repair',
        row?.phase ?? 'pending',
        `repair re-derives rows after a failed verify (backfilled) or a shadow mismatch (verified), not in ${row?.phase ?? 'pending'}`,
        row?.phase === 'read-new'
          ? 'Reads already use the new column; send them back with read-old first.'
          : 'Run the backfill to completion and verify first.',
      );
    } else if (!resuming) {
      await runTransition(
        scope,
        'repair',
        {},
        {
          cause: options.cause,
          // Fresh ranges up to the highest key now: rows inserted since the first backfill are walked too.
          before: async (r) => {
            await ctx.knex.raw('DELETE FROM ??.backfill_ranges WHERE migration_id = ?', [ctx.stateSchema, scope.id]);
            await prepareBackfill(ctx, r, { workers: options.batch?.workers ?? scope.migration.batch.workers });
          },
          extra: { rows_backfilled: 0, backfill_completed_at: null },
        },
      );
    }
    const run = await runBackfill(scope, options);
    span.setAttributes({
      [ATTR.rows]: run.rowsScanned,
      [ATTR.rowsRepaired]: run.rowsUpdated,
      [ATTR.toPhase]: run.phase,
    });
    if (run.rowsUpdated > 0)
      ctx.meter
        .createCounter(METRIC.rowsRepaired, {
          unit: '{row}',
          description: 'Rows re-derived by repair after a failed verify',
        })
        .add(run.rowsUpdated, { [ATTR.migrationId]: scope.id });
    await store.recordEvent({
      migration_id: scope.id,
      kind: 'repair',
      action: 'repair',
      from_phase: 'backfilling',
      to_phase: run.phase,
      reason: `${run.rowsUpdated} row(s) re-derived of ${run.rowsScanned} examined`,
      detail: { rowsRepaired: run.rowsUpdated, rowsScanned: run.rowsScanned, completed: run.completed },
    });
    ctx.logger.info(`phaseflag: ${scope.id}: repair re-derived ${run.rowsUpdated} row(s)`, {
      migrationId: scope.id,
      rowsRepaired: run.rowsUpdated,
    });
    if (run.phase !== 'backfilled')
      return { rowsRepaired: run.rowsUpdated, rowsScanned: run.rowsScanned, backfill: run, verify: null };
    try {
      const verified = await verify(scope, {
        batchSize: options.verifyBatchSize,
        signal: options.signal,
        cause: options.cause,
      });
      return { rowsRepaired: run.rowsUpdated, rowsScanned: run.rowsScanned, backfill: run, verify: verified };
    } catch (error) {
      // Rows went wrong again while the repair ran: the verify's error says how many; repair can run again.
      if (isPhaseflagError(error, 'PF_VERIFY_FAILED'))
        span.setAttribute(ATTR.mismatches, (error.value as { mismatches?: number })?.mismatches ?? -1);
      throw error;
    }
  });
}
