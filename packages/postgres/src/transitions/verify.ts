import { ATTR, GuardRefusedError, VerifyFailedError } from '@phaseflag/core';
import type { Knex } from 'knex';
import { resolveScope, type MigrationScope } from './scope.js';
import type { TransitionOptions } from '../types.js';
import { assertDefinitionUnchanged } from './definition.js';
import { refuse, runTransition, type TransitionStamp } from './run.js';
import { applyVerifySteps } from '../operations/steps/phase-steps.js';
import { verifyMigration, type VerifyResult } from '../operations/verify.js';

/** Runs verify, records its result and moves backfilled → verified on a clean one; see MigrationHandle.verify. */
export async function verify(
  scope: MigrationScope,
  options: { batchSize?: number; signal?: AbortSignal } & TransitionOptions,
): Promise<VerifyResult> {
  const { ctx, store } = scope;
  await assertDefinitionUnchanged(scope); // verify compares with the recorded expression, not an edited one
  const row = await store.get(scope.id);
  const phase = row?.phase ?? 'pending';
  if (phase !== 'backfilled' && phase !== 'verified' && phase !== 'read-new') {
    await refuse(
      scope,
      'verify',
      phase,
      `verify runs once the backfill is complete, not in ${phase}`,
      'Run the backfill to completion first.',
    );
  }
  const r = await resolveScope(scope);
  const result = await verifyMigration(ctx, r, { batchSize: options.batchSize, signal: options.signal });
  if (!result.complete && result.mismatches === 0) {
    // Aborted part-way with nothing wrong seen: not a result. Recording it as a failed verify would make it
    // look dirty (and a controller would wait for a human); the next run starts afresh.
    await store.recordEvent({
      migration_id: scope.id,
      kind: 'verify',
      action: 'verify',
      from_phase: phase,
      to_phase: null,
      reason: `aborted after ${result.rowsChecked} rows`,
      detail: null,
    });
    throw options.signal?.reason ?? new Error(`verify of "${scope.id}" was aborted`);
  }
  const stored = {
    clean: result.clean,
    mismatches: result.mismatches,
    rowsChecked: result.rowsChecked,
    sampleKeys: result.sampleKeys.slice(0, 20),
    underivable: result.underivable.count,
  };
  await store.update(scope.id, { verify_result: JSON.stringify(stored), verified_at: ctx.knex.fn.now() });
  await store.recordEvent({
    migration_id: scope.id,
    kind: 'verify',
    action: 'verify',
    from_phase: phase,
    to_phase: null,
    reason: result.clean
      ? 'clean'
      : `${result.mismatches} mismatches${result.underivable.count > 0 ? `, ${result.underivable.count} underivable` : ''}`,
    detail: stored,
  });
  if (!result.clean) {
    if (phase === 'backfilled') {
      await runTransition(scope, 'verify', {}, { cause: options.cause }).catch((e) => {
        if (!(e instanceof GuardRefusedError)) throw e;
      });
    }
    const u = result.underivable;
    const firstRow = u.rows[0];
    const underivable =
      u.count === 0
        ? ''
        : ` ${u.count} row(s) cannot be derived by the backfill expression (first key ${JSON.stringify(firstRow?.key)}, value ${JSON.stringify(firstRow?.oldValue)}: ${firstRow?.error}).`;
    throw new VerifyFailedError(
      'PF_VERIFY_FAILED',
      `Verify of "${scope.id}" found ${result.mismatches} row(s) whose ${scope.migration.newColumn.name} differs from the backfill expression.${underivable}`,
      {
        value: {
          mismatches: result.mismatches,
          sampleKeys: result.sampleKeys.slice(0, 10),
          underivable: { count: u.count, rows: u.rows },
        },
        migrationId: scope.id,
        hint:
          u.count > 0
            ? 'Fix the listed rows (give the old column a value the expression maps; the trigger derives the new column on that write) or change the expression, then run verify again.'
            : `Find what wrote those rows around dual-write (a writer without the trigger or router?), then re-derive them with \`phaseflag repair ${scope.id}\` (repair()), which verifies again.`,
      },
    );
  }
  // The new column's foreign key, added and validated now that every row has a parent; a row written without one
  // since the walk fails it (PF_VERIFY_FAILED naming the row) and the phase stays where it is.
  await applyVerifySteps(ctx, r, options.signal);
  if (phase === 'backfilled')
    await runTransition(scope, 'verify', {}, { cause: options.cause, stamp: stampVerifiedLsn });
  return result;
}

/**
 * The primary's WAL position, taken in the transaction that moves the phase to verified: every row the backfill
 * wrote and verify read was committed before it, so a replica that has replayed past it holds the verified data
 * (see the router's `replica` option). The insert position rather than pg_current_wal_lsn()'s write position: with
 * asynchronous commit a committed row's WAL may not be written yet, and the later position is the safe one.
 */
async function stampVerifiedLsn(trx: Knex.Transaction): Promise<TransitionStamp> {
  const row = (await trx.raw('SELECT pg_current_wal_insert_lsn()::text AS lsn')).rows[0] as { lsn: string };
  return {
    extra: { verified_lsn: row.lsn },
    detail: { verifiedLsn: row.lsn },
    attributes: { [ATTR.verifiedLsn]: row.lsn },
  };
}
