import { GuardRefusedError, VerifyFailedError } from '@phaseflag/core';
import type { MigrationHandle, TransitionOptions } from '../migration-handle.js';
import * as ops from '../operations.js';
import { assertDefinitionUnchanged } from './definition.js';
import { refuse, runTransition } from './transition.js';

/** Runs verify, records its result and moves backfilled → verified on a clean one; see MigrationHandle.verify. */
export async function verify(h: MigrationHandle, options: { batchSize?: number; signal?: AbortSignal } & TransitionOptions): Promise<ops.VerifyResult> {
  const { ctx, store } = h.pf;
  await assertDefinitionUnchanged(h); // verify compares with the recorded expression, not an edited one
  const row = await store.get(h.id);
  const phase = row?.phase ?? 'pending';
  if (phase !== 'backfilled' && phase !== 'verified' && phase !== 'read-new') {
    await refuse(h, 'verify', phase, `verify runs once the backfill is complete, not in ${phase}`, 'Run the backfill to completion first.');
  }
  const r = await h.resolve();
  const result = await ops.verify(ctx, r, { batchSize: options.batchSize, signal: options.signal });
  if (!result.complete && result.mismatches === 0) {
    // Aborted part-way with nothing wrong seen: not a result. Recording it as a failed verify would make it
    // look dirty (and a controller would wait for a human); the next run starts afresh.
    await store.recordEvent({ migration_id: h.id, kind: 'verify', action: 'verify', from_phase: phase, to_phase: null, reason: `aborted after ${result.rowsChecked} rows`, detail: null });
    throw options.signal?.reason ?? new Error(`verify of "${h.id}" was aborted`);
  }
  const stored = {
    clean: result.clean, mismatches: result.mismatches, rowsChecked: result.rowsChecked, sampleKeys: result.sampleKeys.slice(0, 20), underivable: result.underivable.count,
  };
  await store.update(h.id, { verify_result: JSON.stringify(stored), verified_at: ctx.knex.fn.now() });
  await store.recordEvent({ migration_id: h.id, kind: 'verify', action: 'verify', from_phase: phase, to_phase: null, reason: result.clean ? 'clean' : `${result.mismatches} mismatches${result.underivable.count > 0 ? `, ${result.underivable.count} underivable` : ''}`, detail: stored });
  if (!result.clean) {
    if (phase === 'backfilled') {
      await runTransition(h, 'verify', {}, { cause: options.cause }).catch((e) => {
        if (!(e instanceof GuardRefusedError)) throw e;
      });
    }
    const u = result.underivable;
    const firstRow = u.rows[0];
    const underivable = u.count === 0 ? ''
      : ` ${u.count} row(s) cannot be derived by the backfill expression (first key ${JSON.stringify(firstRow?.key)}, value ${JSON.stringify(firstRow?.oldValue)}: ${firstRow?.error}).`;
    throw new VerifyFailedError('PF_VERIFY_FAILED', `Verify of "${h.id}" found ${result.mismatches} row(s) whose ${h.migration.newColumn.name} differs from the backfill expression.${underivable}`, {
      value: { mismatches: result.mismatches, sampleKeys: result.sampleKeys.slice(0, 10), underivable: { count: u.count, rows: u.rows } }, migrationId: h.id,
      hint: u.count > 0
        ? 'Fix the listed rows (give the old column a value the expression maps; the trigger derives the new column on that write) or change the expression, then run verify again.'
        : `Find what wrote those rows around dual-write (a writer without the trigger or router?), then re-derive them with \`phaseflag repair ${h.id}\` (repair()), which verifies again.`,
    });
  }
  if (phase === 'backfilled') await runTransition(h, 'verify', {}, { cause: options.cause });
  return result;
}
