import { StateError, type GuardFacts } from '@phaseflag/core';
import type { MigrationHandle, MigrationStatus } from '../migration-handle.js';
import * as ops from '../operations.js';
import type { ResolvedMigration } from '../resolved.js';
import type { InstanceRow, MigrationRow } from '../store/state-store.js';
import { registerResolved } from './registration.js';
import { underivableSummary } from '../underivable/store.js';

export async function migrationStatus(h: MigrationHandle): Promise<MigrationStatus> {
  const { ctx, store } = h.pf;
  const row = await store.get(h.id);
  if (!row) {
    throw new StateError('PF_UNKNOWN_MIGRATION', `Migration "${h.id}" is not in the state store.`, { value: h.id, migrationId: h.id, hint: 'Run expand (or register) first.' });
  }
  const [progress, instances, events, underivable] = await Promise.all([
    ops.progress(ctx, h.id).catch(() => null),
    store.instances(h.id, h.pf.instanceTtlMs),
    store.events(h.id, 50),
    underivableSummary(ctx, h.id),
  ]);
  return { id: h.id, phase: row.phase, version: row.version, row, progress, instances, events, underivable };
}

/** What the guards decide from: the stored row, the live catalog, the backfill's ranges and the live instances. */
export async function guardFacts(h: MigrationHandle, row: MigrationRow, r: ResolvedMigration, extra: Partial<GuardFacts>): Promise<GuardFacts> {
  const { ctx, store } = h.pf;
  const cols = [h.migration.newColumn.name, ...(h.migration.oldColumn ? [h.migration.oldColumn] : [])];
  const [triggerInstalled, progress, instances, conflicts, underivable] = await Promise.all([
    ops.syncInstalled(ctx, r),
    ops.progress(ctx, h.id).catch(() => null),
    store.instances(h.id, h.pf.instanceTtlMs),
    store.conflicts(h.id, r.schema, r.table, cols),
    underivableSummary(ctx, h.id, 1),
  ]);
  const verifiedAfterBackfill = row.verified_at !== null && row.backfill_completed_at !== null && row.verified_at >= row.backfill_completed_at;
  return {
    phase: row.phase,
    newColumnReady: r.newColumnExists,
    triggerInstalled,
    nothingToSync: h.migration.backfill === null && (h.migration.reverse === null || h.migration.oldColumn === null),
    liveInstances: instances.filter((i) => i.live),
    backfillComplete: progress?.done === true,
    verify: row.verify_result ? { clean: row.verify_result.clean, mismatches: row.verify_result.mismatches, afterBackfill: verifiedAfterBackfill } : null,
    confirmed: false,
    conflicts,
    underivable: { count: underivable.count, firstKey: underivable.rows[0]?.key ?? null, stoppedBackfill: underivable.stoppedBackfill },
    ...extra,
  };
}

export async function inspectMigration(h: MigrationHandle): Promise<{ row: MigrationRow; facts: GuardFacts; instances: InstanceRow[] }> {
  const r = await h.resolve();
  const row = await registerResolved(h, r);
  const [facts, instances] = await Promise.all([guardFacts(h, row, r, {}), h.pf.store.instances(h.id, h.pf.instanceTtlMs)]);
  return { row, facts, instances };
}
